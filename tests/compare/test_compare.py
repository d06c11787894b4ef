"""The head comparison: tiny budget end to end, FLOP rule, summaries and plots."""

import json
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ugmm_vision.cli import build_cli
from ugmm_vision.compare import COLUMNS, summarize
from ugmm_vision.compare.plots import plot_accuracy_vs_ece, plot_metric_bars
from ugmm_vision.heads import (
    LinearHead,
    MLPHead,
    ParamMatchedMLPHead,
    UGMMHead,
    count_parameters,
    head_flops_per_image,
    ugmm_layer_flops,
)
from ugmm_vision.layers import UGMMLayer

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
COMPARE = ["--config", str(CONFIGS / "digits.yaml"), "--config", str(CONFIGS / "compare_digits.yaml")]


@pytest.mark.parametrize("mode", ["finetune", "frozen"])
def test_compare_cli_tiny_budget_produces_every_column(tmp_path, monkeypatch, mode):
    monkeypatch.chdir(tmp_path)
    build_cli(
        [
            "compare",
            *COMPARE,
            "--seeds=[0]",
            "--epochs=1",
            f"--mode={mode}",
            "--trainer.limit_train_batches=3",
            "--corruptions=[gaussian_noise]",
            "--severities=[2]",
            "--output_dir",
            "cmp",
        ]
    )
    result = json.loads((tmp_path / "cmp/compare.json").read_text())
    heads = ["linear", "mlp_same_shape", "mlp_param_matched", "ugmm", "ugmm_tied", "ugmm_single_layer"]
    assert list(result["summary"]) == heads
    method_only = {"ood_auroc_mi", "ood_auroc_feature_density"}  # uncertainty-method rows (tests/methods)
    for head, stats in result["summary"].items():
        expected = set(COLUMNS) - method_only
        if not head.startswith("ugmm"):
            expected.discard("ood_auroc_density")  # only uGMM heads have a density score
        if mode == "frozen":
            expected.discard("model_latency_us")
        assert expected <= set(stats), (head, expected - set(stats))
        assert stats["acc"]["n"] == 1
    params = {h: result["summary"][h]["params"]["mean"] for h in heads}
    assert abs(params["mlp_param_matched"] - params["ugmm"]) <= 0.02 * params["ugmm"]
    assert {"compare.md", "compare.json", "metric_bars.png", "accuracy_vs_ece.png"} <= {
        p.name for p in (tmp_path / "cmp").iterdir()
    }
    markdown = (tmp_path / "cmp/compare.md").read_text()
    titles = [title for key, title in COLUMNS.items() if key not in method_only]
    assert all(title in markdown for title in titles if title != "model µs / image" or mode != "frozen")


def test_flop_rule_on_a_hand_worked_layer():
    # B=2, I=4, O=3: per component 8 FLOPs (sub, mul, square, ½-scale and subtract, subtract max and exp,
    # accumulate), per neuron 2 (log, add max): 2·3·(8·4 + 2) = 204.
    assert ugmm_layer_flops(2, 4, 3) == 204
    layer = UGMMLayer(4, 3)
    with FlopCounterMode(display=False) as counter:  # torch's counter applies the rule registered for the op...
        layer(torch.randn(2, 4))
    assert counter.get_total_flops() == 204
    # ...so the head count is the rule: per image 1·3·34 = 102, plus 1·2·(8·3 + 2) = 52 for a second layer.
    assert head_flops_per_image(UGMMHead(4, 2, hidden=(3,), norm_layer=None), 4) == 102 + 52
    assert head_flops_per_image(LinearHead(4, 3, norm_layer=None), 4) == 2 * 4 * 3
    assert head_flops_per_image(MLPHead(4, 3, hidden=(5,), norm_layer=None), 4) == 2 * 4 * 5 + 2 * 5 * 3


@pytest.mark.parametrize(("in_features", "hidden", "tied"), [(128, (64,), False), (128, (64,), True), (512, (), False)])
def test_param_matched_mlp_within_two_percent(in_features, hidden, tied):
    mlp = ParamMatchedMLPHead(in_features, 10, match_hidden=hidden, match_tied_means=tied)
    target = count_parameters(UGMMHead(in_features, 10, hidden=hidden, tied_means=tied))
    assert mlp.matched_parameters == target
    assert abs(count_parameters(mlp) - target) <= 0.02 * target


def test_summarize_mean_and_std_by_hand():
    runs = [{"head": "a", "seed": s, "acc": a, "ece": e} for s, a, e in [(0, 0.9, 0.1), (1, 0.8, 0.3), (2, 0.7, 0.2)]]
    runs.append({"head": "b", "seed": 0, "acc": 0.5, "ece": None})
    summary = summarize(runs)
    assert summary["a"]["acc"]["mean"] == pytest.approx(0.8)
    assert summary["a"]["acc"]["std"] == pytest.approx(statistics.stdev([0.9, 0.8, 0.7]))
    assert summary["a"]["ece"]["std"] == pytest.approx(0.1)
    assert summary["b"]["acc"] == {"mean": 0.5, "std": 0.0, "n": 1}
    assert "ece" not in summary["b"]  # missing figures are left out, never averaged as zero


def test_plots_draw_the_summary():
    runs = [
        {"head": h, "seed": s, "acc": 0.8 + 0.05 * s + i / 10, "ece": 0.1 - 0.01 * s}
        for i, h in enumerate(["lin", "ugmm"])
        for s in range(3)
    ]
    summary = summarize(runs)
    bars = plot_metric_bars(summary, metrics=["acc", "ece"])
    heights = [b.get_height() for b in bars.axes[0].patches if b.get_gid() == "bars/acc"]
    np.testing.assert_allclose(heights, [summary["lin"]["acc"]["mean"], summary["ugmm"]["acc"]["mean"]])
    scatter = plot_accuracy_vs_ece(runs)
    (points,) = [c for c in scatter.axes[0].collections if c.get_gid() == "scatter/ugmm"]
    np.testing.assert_allclose(points.get_offsets(), [[r["acc"], r["ece"]] for r in runs if r["head"] == "ugmm"])


def test_bad_arguments_are_named():
    from ugmm_vision.backbones import SmallCNN
    from ugmm_vision.compare import run_comparison
    from ugmm_vision.data import DigitsDataModule
    from ugmm_vision.models import ImageClassifier

    model = ImageClassifier(SmallCNN(in_chans=1), LinearHead, num_classes=10)
    data = DigitsDataModule()
    with pytest.raises(ValueError, match="`heads`"):
        run_comparison(model, data, {})
    with pytest.raises(ValueError, match="`mode`"):
        run_comparison(model, data, {"l": LinearHead}, mode="partial")
    with pytest.raises(ValueError, match="`max_epochs`"):
        run_comparison(model, data, {"l": LinearHead}, max_epochs=0)
    with pytest.raises(ValueError, match=r"`augment=False`.*`cache_images=True`"):
        data.augment = True  # as the image data modules set it (digits has no augmentation of its own)
        run_comparison(model, data, {"l": LinearHead}, cache_images=True)


def test_cached_images_are_the_loaders_images_and_train_the_same_model():
    """cache_images serves exactly the tensors the data module's loaders give, and a finetune comparison on them
    evaluates the same sets as the uncached one (the accuracy is in [0, 1] and the report names every set)."""
    from ugmm_vision.backbones import SmallCNN
    from ugmm_vision.compare import run_comparison
    from ugmm_vision.compare.runner import _cache_features
    from ugmm_vision.data import DigitsDataModule
    from ugmm_vision.models import ImageClassifier

    model = ImageClassifier(SmallCNN(in_chans=1, widths=(4,)), LinearHead, num_classes=8)
    data = DigitsDataModule(ood_classes=[8, 9])
    shift = {"corruptions": ["contrast"], "severities": (2,)}
    cached = _cache_features(model, data, shift, {"accelerator": "cpu"}, progress=False, images_only=True)
    for name, loader in data.test_dataloader().items():
        images = torch.cat([batch[0] for batch in loader])
        torch.testing.assert_close(cached.test_sets[name].tensors[0], images, rtol=0, atol=0)
    shifted = torch.cat([b[0] for b in data.shift_dataloaders(["contrast"], (2,))["shift/contrast/2"]])
    torch.testing.assert_close(cached.shift_sets["shift/contrast/2"].tensors[0], shifted, rtol=0, atol=0)
    assert len(cached.train_set) == len(data.train_dataloader().dataset)
    kwargs = {"seeds": (0,), "max_epochs": 1, "corruptions": ["contrast"], "severities": (2,), "progress": False}
    kwargs["trainer_kwargs"] = {"accelerator": "cpu", "limit_train_batches": 2}
    rows = {c: run_comparison(model, data, {"l": LinearHead}, cache_images=c, **kwargs)[0] for c in (False, True)}
    for row in rows.values():
        assert 0.0 <= row["report"]["id"]["acc"] <= 1.0
    assert rows[True]["report"]["ood"].keys() == rows[False]["report"]["ood"].keys()
    assert rows[True]["report"]["shift"].keys() == rows[False]["report"]["shift"].keys()
