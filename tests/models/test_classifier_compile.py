"""``ImageClassifier`` under ``torch.compile(fullgraph=True)``: the whole model, and the ``compile`` option."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ugmm_vision.backbones import SmallCNN
from ugmm_vision.heads import UGMMHead
from ugmm_vision.models import ImageClassifier
from ugmm_vision.trainers import quiet_trainer


def make_model(**kwargs) -> ImageClassifier:
    torch.manual_seed(0)
    head = UGMMHead(16, 4, hidden=(6,), mixing_dropout=0.3)
    return ImageClassifier(SmallCNN(in_chans=1, widths=(8, 16), drop_rate=0.2), head, num_classes=4, **kwargs)


def step(module, images, seed):
    """Logits and every parameter's gradient of one forward/backward at ``seed``."""
    module.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    logits = module(images)
    torch.nn.functional.cross_entropy(logits, torch.arange(images.shape[0]) % 4).backward()
    return [logits.detach(), *(p.grad for p in module.parameters())]


@pytest.mark.slow
def test_whole_model_compiles_fullgraph_and_matches_eager_train_and_eval():
    model = make_model()
    images = torch.randn(5, 1, 8, 8)
    compiled = torch.compile(model, fullgraph=True)
    with torch._inductor.config.patch(fallback_random=True):  # eager's generator: the same dropout masks
        for training in (True, False):
            model.train(training)
            want, got = step(model, images, 7), step(compiled, images, 7)
            for g, w in zip(got, want, strict=True):
                assert g is not None and torch.isfinite(g).all()
                torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_compile_option_keeps_names_and_trains(tmp_path):
    eager, compiled = make_model(), make_model(compile=True)
    assert list(compiled.state_dict()) == list(eager.state_dict())  # checkpoints stay interchangeable
    images = torch.randn(16, 1, 8, 8)
    data = DataLoader(TensorDataset(images, torch.arange(16) % 4), batch_size=8)
    trainer = quiet_trainer(max_steps=2, default_root_dir=tmp_path)
    trainer.fit(compiled, data)
    assert trainer.global_step == 2
    compiled.eval()
    eager.load_state_dict(compiled.state_dict())
    eager.eval()
    torch.testing.assert_close(compiled(images), eager(images), rtol=1e-5, atol=1e-5)


def test_compile_option_is_checked():
    with pytest.raises(ValueError, match="`compile`"):
        make_model(compile="yes")


@pytest.mark.slow
def test_config_flag_turns_compile_on(tmp_path, monkeypatch):
    from pathlib import Path

    from ugmm_vision.cli import build_cli

    monkeypatch.chdir(tmp_path)
    configs = Path(__file__).resolve().parents[2] / "configs"
    args = ["fit", "--config", str(configs / "digits.yaml"), "--config", str(configs / "compile.yaml")]
    cli = build_cli([*args, "--trainer.fast_dev_run=true"])
    assert cli.model.hparams.compile is True
    assert cli.model.head._compiled_call_impl is not None  # nn.Module.compile's in-place compiled call
    assert cli.trainer.state.finished and "train/loss" in cli.trainer.logged_metrics
