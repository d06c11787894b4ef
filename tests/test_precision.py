"""``--trainer.precision=bf16-mixed`` on CPU: training works, and the uGMM maths runs in float32 inside."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from ugmm_vision.cli import build_cli
from ugmm_vision.functional import ugmm_log_prob, ugmm_log_prob_reference
from ugmm_vision.layers import UGMMLayer

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "digits.yaml")


@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_ugmm_under_bf16_autocast_is_float32_maths_rounded_once(backend: str) -> None:
    """Under CPU autocast the head's uGMM layer gets bfloat16 features; the result equals the float32 formula
    on those features, rounded to bfloat16 once at the end (computed in bfloat16 it would be far coarser)."""
    g = torch.Generator().manual_seed(0)
    layer = UGMMLayer(64, 10, init="unit", backend=backend)
    x = torch.randn(32, 64, generator=g).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    assert y.dtype == torch.bfloat16 and bool(torch.isfinite(y).all())
    expected = ugmm_log_prob_reference(
        x.double(), layer.mu.double(), layer.effective_log_sigma.double(), layer.mix_logits.double()
    )
    spacing = torch.finfo(torch.bfloat16).eps * expected.abs()  # one bfloat16 step at each value
    assert bool(((y.double() - expected).abs() <= spacing).all())  # round(float32 result): within one step
    # Half-precision parameters are computed in float32 as well.
    y_half = ugmm_log_prob(x, layer.mu.bfloat16(), layer.log_sigma.bfloat16(), layer.mix_logits.bfloat16())
    params = (p.bfloat16().double() for p in (layer.mu, layer.effective_log_sigma, layer.mix_logits))
    expected_half = ugmm_log_prob_reference(x.double(), *params)
    assert bool(
        ((y_half.double() - expected_half).abs() <= torch.finfo(torch.bfloat16).eps * expected_half.abs()).all()
    )


def test_bf16_mixed_training_on_digits(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cli = build_cli(
        [
            "fit",
            "--config",
            CONFIG,
            "--trainer.precision=bf16-mixed",
            "--trainer.max_epochs=3",
            "--trainer.log_every_n_steps=1",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_checkpointing=false",
            "--trainer.callbacks=[]",
            "--model.init_args.backbone.init_args.widths=[16, 32, 64]",
            "--model.init_args.lr_scheduler.init_args.T_max=3",
        ]
    )
    assert cli.trainer.precision == "bf16-mixed" and cli.trainer.global_step == 45
    metrics = Path(cli.trainer.logger.log_dir) / "metrics.csv"
    losses = [float(row["train/loss"]) for row in csv.DictReader(metrics.open()) if row.get("train/loss")]
    assert len(losses) == 45 and all(map(torch.isfinite, torch.tensor(losses)))
    first, last = sum(losses[:5]) / 5, sum(losses[-15:]) / 15
    assert last < 0.7 * first, (first, last)

    model, data = cli.model.eval(), cli.datamodule
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(data.test_set.tensors[0])
    assert bool(torch.isfinite(logits).all())
    accuracy = (logits.float().argmax(-1) == data.test_set.tensors[1]).float().mean()
    assert accuracy > 0.5
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
