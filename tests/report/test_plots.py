"""Report figures are tested by the data they draw, compared with the metric functions' own output."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from logit_cases import random_logits  # registered by tests/conftest.py
from matplotlib.figure import Figure

from ugmm_vision.functional import (
    aurc,
    expected_calibration_error,
    max_softmax_probability,
    negative_entropy,
    ood_auroc,
    reliability_diagram_data,
    risk_coverage_curve,
)
from ugmm_vision.report import (
    plot_reliability_diagram,
    plot_risk_coverage,
    plot_score_histograms,
    plot_shift_curves,
    save_figure,
)


def make_case(n: int = 300, c: int = 4, seed: int = 0, scale: float = 2.5) -> tuple[torch.Tensor, torch.Tensor]:
    return random_logits(n, c, seed, scale, targets_from_logits=True)


def patches(ax, gid: str) -> list:
    return [p for p in ax.patches if p.get_gid() == gid]


def line(ax, gid: str):
    (found,) = [ln for ln in ax.lines if ln.get_gid() == gid]
    return found


@pytest.mark.parametrize("n_bins", [1, 5, 15])
@pytest.mark.parametrize("seed", [0, 1])
def test_reliability_diagram_draws_reliability_diagram_data(n_bins: int, seed: int) -> None:
    logits, target = make_case(seed=seed)
    probs = logits.softmax(-1)
    data = reliability_diagram_data(probs, target, n_bins)
    nonempty = data.count > 0
    assert (~nonempty).any() or n_bins == 1  # the case has empty bins, which must not be drawn
    fig = plot_reliability_diagram(probs, target, n_bins=n_bins)
    ax, hist = fig.axes

    bars = patches(ax, "reliability/accuracy")
    np.testing.assert_allclose([b.get_height() for b in bars], data.accuracy[nonempty].double(), rtol=1e-12)
    np.testing.assert_allclose([b.get_x() for b in bars], data.bin_edges[:-1][nonempty].double(), rtol=1e-12)
    np.testing.assert_allclose([b.get_width() for b in bars], data.bin_edges.diff()[nonempty].double(), rtol=1e-6)

    gaps = patches(ax, "reliability/gap")  # from the accuracy up (or down) to the mean confidence
    np.testing.assert_allclose([g.get_y() for g in gaps], data.accuracy[nonempty].double(), rtol=1e-12)
    np.testing.assert_allclose(
        [g.get_y() + g.get_height() for g in gaps], data.confidence[nonempty].double(), rtol=1e-6
    )

    points = line(ax, "reliability/points").get_xydata()  # (K, 2): (mean confidence, accuracy)
    np.testing.assert_allclose(points[:, 0], data.confidence[nonempty].double(), rtol=1e-12)
    np.testing.assert_allclose(points[:, 1], data.accuracy[nonempty].double(), rtol=1e-12)

    counts = patches(hist, "reliability/count")
    np.testing.assert_array_equal([c.get_height() for c in counts], data.count[nonempty].numpy())
    assert sum(c.get_height() for c in counts) == len(target)

    ece = expected_calibration_error(probs, target, n_bins).item()
    assert any(f"{ece:.4f}" in text.get_text() for text in ax.get_legend().get_texts())


def test_reliability_diagram_validates_through_the_data_function() -> None:
    with pytest.raises(ValueError, match="`probs`"):
        plot_reliability_diagram(torch.randn(5, 3) * 10, torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="`n_bins`"):
        plot_reliability_diagram(torch.full((5, 2), 0.5), torch.zeros(5, dtype=torch.long), n_bins=0)


def test_risk_coverage_draws_each_curve_with_its_aurc() -> None:
    logits, target = make_case(seed=2)
    correct = logits.argmax(1) == target
    rounded = torch.round(max_softmax_probability(logits), decimals=1)  # ties: fewer points than samples
    curves = {
        "msp": (max_softmax_probability(logits), correct),
        "neg_entropy": (negative_entropy(logits), correct.long()),
        "msp_rounded": (rounded, correct),
    }
    fig = plot_risk_coverage(curves)
    (ax,) = fig.axes
    for name, (confidence, ok) in curves.items():
        expected = risk_coverage_curve(confidence, ok)
        drawn = line(ax, f"risk_coverage/{name}")
        np.testing.assert_allclose(drawn.get_xdata(), expected.coverage.double(), rtol=1e-12)
        np.testing.assert_allclose(drawn.get_ydata(), expected.risk.double(), rtol=1e-12)
        assert f"{aurc(confidence, ok).item():.4f}" in drawn.get_label()
    assert len(line(ax, "risk_coverage/msp_rounded").get_xdata()) == rounded.unique().numel()


@pytest.mark.parametrize(
    ("curves", "match"),
    [
        ({}, "`curves`"),
        ({"a": torch.rand(3)}, r"`curves\['a'\]`"),
        ({"a": (torch.rand(3), torch.ones(4))}, r"`curves\['a'\]`.*`correct`"),
    ],
)
def test_risk_coverage_rejects_bad_curves(curves: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        plot_risk_coverage(curves)


def test_score_histograms_draw_densities_and_auroc_per_ood_set() -> None:
    g = torch.Generator().manual_seed(3)
    id_scores = torch.randn(400, generator=g) + 2
    ood_scores = {"noise": torch.randn(150, generator=g), "svhn": torch.randn(250, generator=g) + 1}
    fig = plot_score_histograms(id_scores, ood_scores, "energy", bins=20)
    assert len(fig.axes) == 2
    everything = torch.cat([id_scores, *ood_scores.values()]).double().numpy()
    edges = np.histogram_bin_edges(everything, bins=20)  # one set of bins for every panel
    for ax, (name, scores) in zip(fig.axes, ood_scores.items(), strict=True):
        for gid, values in (("histogram/id", id_scores), (f"histogram/{name}", scores)):
            bars = patches(ax, gid)
            density, _ = np.histogram(values.double().numpy(), bins=edges, density=True)
            np.testing.assert_allclose([b.get_height() for b in bars], density, rtol=1e-12)
            np.testing.assert_allclose([b.get_x() for b in bars], edges[:-1], rtol=1e-12)
        assert f"{ood_auroc(id_scores, scores).item():.4f}" in ax.get_title()


@pytest.mark.parametrize(
    ("id_scores", "ood_scores", "kwargs", "match"),
    [
        (torch.randn(5), {}, {}, "`ood_scores`"),
        (torch.randn(5, 1), {"a": torch.randn(3)}, {}, "`id_scores`"),
        (torch.randn(5), {"a": torch.tensor([0.0, float("inf")])}, {}, r"`ood_scores\['a'\]`"),
        (torch.randn(5), {"a": torch.tensor([0.0, float("nan")])}, {}, r"`ood_scores\['a'\]`"),
        (torch.randn(5), {"a": torch.randn(3)}, {"bins": 0}, "`bins`"),
    ],
)
def test_score_histograms_reject_bad_input(id_scores, ood_scores, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        plot_score_histograms(id_scores, ood_scores, "msp", **kwargs)


def shift_results() -> dict[str, dict[int, dict[str, float]]]:
    rng = np.random.default_rng(4)
    results = {}
    for corruption in ("gaussian_noise", "blur", "contrast"):
        severities = range(6) if corruption != "contrast" else (0, 1, 3, 5)  # a corruption may skip levels
        results[corruption] = {
            s: {"acc": float(0.95 - 0.08 * s * rng.uniform(0.5, 1.5)), "ece": torch.tensor(0.02 + 0.03 * s)}
            for s in severities
        }
    return results


def test_shift_curves_draw_each_corruption_and_the_mean() -> None:
    results = shift_results()
    fig = plot_shift_curves(results)
    assert len(fig.axes) == 2
    for ax, metric in zip(fig.axes, ("acc", "ece"), strict=True):
        for corruption, by_severity in results.items():
            drawn = line(ax, f"shift/{metric}/{corruption}")
            np.testing.assert_array_equal(drawn.get_xdata(), sorted(by_severity))
            np.testing.assert_allclose(drawn.get_ydata(), [float(by_severity[s][metric]) for s in sorted(by_severity)])
        mean = line(ax, f"shift/{metric}/mean")
        np.testing.assert_array_equal(mean.get_xdata(), range(6))
        expected = [np.mean([float(r[s][metric]) for r in results.values() if s in r]) for s in range(6)]
        np.testing.assert_allclose(mean.get_ydata(), expected, rtol=1e-12)


def test_shift_curves_custom_metrics() -> None:
    results = {"noise": {0: {"acc": 0.9, "nll": 0.3}, 2: {"acc": 0.8, "nll": 0.6}}}
    fig = plot_shift_curves(results, metrics=("nll",))
    (ax,) = fig.axes
    np.testing.assert_allclose(line(ax, "shift/nll/mean").get_xydata(), [[0, 0.3], [2, 0.6]])


@pytest.mark.parametrize(
    ("results", "kwargs", "match"),
    [
        ({}, {}, "`results`"),
        ({"noise": {}}, {}, r"`results\['noise'\]`"),
        ({"noise": {6: {"acc": 0.5, "ece": 0.1}}}, {}, "severities"),
        ({"noise": {1: {"acc": 0.5}}}, {}, r"missing \['ece'\]"),
        ({"noise": {1: {"acc": 0.5}}}, {"metrics": ()}, "`metrics`"),
    ],
)
def test_shift_curves_reject_bad_results(results: dict, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        plot_shift_curves(results, **kwargs)


def test_figures_bypass_pyplot_and_save_as_png(tmp_path) -> None:
    logits, target = make_case(n=60, seed=5)
    figures = [
        plot_reliability_diagram(logits.softmax(-1), target),
        plot_risk_coverage({"msp": (max_softmax_probability(logits), logits.argmax(1) == target)}),
        plot_score_histograms(max_softmax_probability(logits), {"x": torch.rand(20)}, "msp", bins=10),
        plot_shift_curves(shift_results()),
    ]
    for i, fig in enumerate(figures):
        assert isinstance(fig, Figure)
        path = save_figure(fig, tmp_path / f"figure{i}.png", dpi=40)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"figure{i}.png" for i in range(4)]
    pyplot = sys.modules.get("matplotlib.pyplot")
    assert pyplot is None or pyplot.get_fignums() == []  # nothing registered with pyplot's global state
