"""Report figures: reliability diagram, risk–coverage curves, OOD score histograms, distribution-shift curves.

Each function takes data, calls the metric functions of :mod:`ugmm_vision.functional` for every number it
shows (nothing is re-derived here) and returns a :class:`matplotlib.figure.Figure` drawn on the Agg canvas.
Figures are built without :mod:`matplotlib.pyplot`, so no global figure registry fills up and nothing needs
``plt.close``; save them with :func:`ugmm_vision.report.save_figure`.

Every drawn data artist carries a stable ``gid`` (listed in each docstring) so that code and tests can find it:
``[p for p in fig.axes[0].patches if p.get_gid() == "reliability/accuracy"]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from torch import Tensor

from ugmm_vision.checks import (
    check_confidence_correct,
    check_non_negative_int,
    check_positive_int,
    check_scores,
    is_int,
)
from ugmm_vision.functional import (
    aurc,
    expected_calibration_error,
    max_softmax_probability,
    ood_auroc,
    reliability_diagram_data,
    risk_coverage_curve,
)
from ugmm_vision.report.canvas import as_numpy, new_figure

__all__ = [
    "plot_reliability_diagram",
    "plot_risk_coverage",
    "plot_score_histograms",
    "plot_shift_curves",
    "report_figures",
]

if TYPE_CHECKING:
    from ugmm_vision.report.build import EvalOutputs

SEVERITIES = range(6)
"""Corruption severities: 0 is the clean test set, 1–5 the ImageNet-C levels."""


def plot_reliability_diagram(probs: Tensor, target: Tensor, n_bins: int = 15, min_count: int = 10) -> Figure:
    """Reliability diagram of the top-label confidence, with the confidence histogram below it.

    The upper panel draws, for each non-empty bin of :func:`~ugmm_vision.functional.reliability_diagram_data`,
    a bar over the bin with height = accuracy (gid ``"reliability/accuracy"``), a hatched bar from the accuracy
    to the mean confidence — the calibration gap (gid ``"reliability/gap"``) — and a marker at (mean confidence,
    accuracy) (line gid ``"reliability/points"``); the diagonal is perfect calibration. The ECE in the legend is
    :func:`~ugmm_vision.functional.expected_calibration_error`. The lower panel draws the sample count of each
    non-empty bin (gid ``"reliability/count"``).

    A bin's bars are as opaque as its share of the samples: fill alpha ``0.15 + 0.85 · count / max count``, the
    weight each bin has in the ECE. Bins with fewer than ``min_count`` samples are drawn hollow (no fill, dashed
    edge): their accuracy is too noisy to read (one or two images give 0, 0.5 or 1), and full-height bars would
    dominate the picture while barely moving the ECE. Each bin's count is written above its bars (text gid
    ``"reliability/count_label"``).

    Args:
        probs: class probabilities, shape (N, C), values in [0, 1].
        target: class indices, shape (N,).
        n_bins: number of equal-width confidence bins.
        min_count: bins holding fewer samples are drawn hollow (0: none).

    Returns:
        A figure with two axes: reliability (``fig.axes[0]``) and confidence histogram (``fig.axes[1]``).

    Example:
        >>> probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
        >>> fig = plot_reliability_diagram(probs, torch.tensor([0, 1, 1, 1]), n_bins=5)
        >>> [float(p.get_height()) for p in fig.axes[0].patches if p.get_gid() == "reliability/accuracy"]
        [1.0, 0.5]
    """
    check_non_negative_int("min_count", min_count)
    data = reliability_diagram_data(probs, target, n_bins)  # validates the arguments
    ece = expected_calibration_error(probs, target, n_bins).item()
    nonempty = (data.count > 0).cpu().numpy()
    left = as_numpy(data.bin_edges[:-1])[nonempty]
    width = as_numpy(data.bin_edges.diff())[nonempty]
    accuracy = as_numpy(data.accuracy)[nonempty]
    confidence = as_numpy(data.confidence)[nonempty]
    count = data.count.cpu().numpy()[nonempty]

    fig = new_figure(5.0, 6.0)
    ax, hist = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.5", linewidth=1, label="perfect calibration")
    bars = ax.bar(left, accuracy, width, align="edge", color="tab:blue", edgecolor="black", label="accuracy")
    gaps = ax.bar(
        left,
        confidence - accuracy,
        width,
        bottom=accuracy,
        align="edge",
        color=to_rgba("tab:red", 0.3),  # per-bin face alphas below (an artist alpha would override them)
        hatch="//",
        edgecolor="tab:red",
        label=f"gap (ECE = {ece:.4f})",
    )
    ax.plot(confidence, accuracy, "o", color="black", markersize=3, gid="reliability/points", label="_points")
    ax.legend(loc="upper left")  # before the per-bin styles: the legend keys show the plain bar styles
    alpha = 0.15 + 0.85 * count / count.max()  # (K,) each bin's weight in the ECE, floored so it stays visible
    for bar, gap, n, a, x, w, top in zip(
        bars, gaps, count, alpha, left, width, np.maximum(accuracy, confidence), strict=True
    ):
        bar.set_gid("reliability/accuracy")
        gap.set_gid("reliability/gap")
        if n < min_count:  # too few samples to read: outline only
            bar.set(facecolor="none", linestyle="--")
            gap.set(facecolor="none", hatch=None, linestyle="--")
        else:
            bar.set_facecolor(to_rgba("tab:blue", a))
            gap.set_facecolor(to_rgba("tab:red", 0.6 * a))
        label = ax.text(x + w / 2, min(top + 0.01, 0.97), str(int(n)), ha="center", va="bottom", fontsize=7)
        label.set_gid("reliability/count_label")
    title = "Reliability diagram" + (f" (hollow: < {min_count} samples)" if (count < min_count).any() else "")
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy", title=title)

    counts = hist.bar(left, count, width, align="edge", color="tab:gray", edgecolor="black")
    for patch in counts:
        patch.set_gid("reliability/count")
    hist.set(xlabel="confidence (top-label probability)", ylabel="samples")
    return fig


def plot_risk_coverage(curves: Mapping[str, tuple[Tensor, Tensor]]) -> Figure:
    """Risk–coverage curves of several models or confidence scores on one axes.

    Each entry ``name: (confidence, correct)`` is drawn as the operating points of
    :func:`~ugmm_vision.functional.risk_coverage_curve` (x = coverage, y = selective risk; line gid
    ``"risk_coverage/<name>"``), labelled with its :func:`~ugmm_vision.functional.aurc`.

    Args:
        curves: name → (confidence of shape (N,), correctness of shape (N,) as bool or 0/1); the sets may differ
            in size.

    Returns:
        A figure with one axes.

    Example:
        >>> confidence, correct = torch.tensor([0.9, 0.8, 0.7, 0.6]), torch.tensor([1, 0, 1, 0])
        >>> fig = plot_risk_coverage({"msp": (confidence, correct)})
        >>> [line.get_label() for line in fig.axes[0].lines]
        ['msp (AURC = 0.3333)']
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"Expected `curves` to be a non-empty dict of name -> (confidence, correct), got {curves!r}")
    for name, pair in curves.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"Expected `curves[{name!r}]` to be a (confidence, correct) pair")
        try:
            check_confidence_correct(*pair)
        except ValueError as err:
            raise ValueError(f"In `curves[{name!r}]`: {err}") from err

    fig = new_figure(6.0, 4.5)
    ax = fig.subplots()
    for name, (confidence, correct) in curves.items():
        curve = risk_coverage_curve(confidence, correct)
        area = aurc(confidence, correct).item()
        ax.plot(
            as_numpy(curve.coverage),
            as_numpy(curve.risk),
            marker="." if curve.coverage.numel() <= 50 else None,
            gid=f"risk_coverage/{name}",
            label=f"{name} (AURC = {area:.4f})",
        )
    ax.set(xlim=(0, 1), xlabel="coverage", ylabel="selective risk", title="Risk–coverage")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    return fig


def plot_score_histograms(
    id_scores: Tensor, ood_scores: Mapping[str, Tensor], score_name: str, *, bins: int = 50
) -> Figure:
    """Histograms of a score on the in-distribution set against each OOD set, one panel per OOD set.

    All panels share one set of ``bins`` equal-width bins over the range of every score. Densities are drawn
    (areas sum to 1) so that sets of different sizes compare; patch gids are ``"histogram/id"`` and
    ``"histogram/<ood name>"``. Each panel's title carries :func:`~ugmm_vision.functional.ood_auroc`.

    Args:
        id_scores: in-distribution scores, shape (N_id,), finite, higher = more in-distribution.
        ood_scores: OOD set name → scores of shape (N_ood,), finite.
        score_name: name of the score (e.g. ``"msp"``), used as the figure title.
        bins: number of histogram bins.

    Returns:
        A figure with one axes per OOD set, in the order of ``ood_scores``.

    Example:
        >>> fig = plot_score_histograms(torch.tensor([3.0, 2.0, 0.5]), {"noise": torch.tensor([1.0, 0.0])}, "msp")
        >>> fig.axes[0].get_title()
        'noise: AUROC = 0.8333'
    """
    if not isinstance(ood_scores, Mapping) or not ood_scores:
        raise ValueError(f"Expected `ood_scores` to be a non-empty dict of name -> scores, got {ood_scores!r}")
    if not isinstance(score_name, str):
        raise ValueError(f"Expected `score_name` to be a str, got {score_name!r}")
    check_positive_int("bins", bins)
    named = {"id_scores": id_scores, **{f"ood_scores[{k!r}]": v for k, v in ood_scores.items()}}
    for label, scores in named.items():
        check_scores(scores, label)
        if not bool(torch.isfinite(scores).all()):
            raise ValueError(f"Expected `{label}` with finite values to draw a histogram, got inf")

    everything = np.concatenate([as_numpy(s) for s in named.values()])
    edges = np.histogram_bin_edges(everything, bins=bins)  # (bins + 1,) shared by every panel
    fig = new_figure(4.0 * len(ood_scores), 3.5)
    axes = fig.subplots(1, len(ood_scores), squeeze=False, sharex=True)[0]
    for ax, (name, scores) in zip(axes, ood_scores.items(), strict=True):
        auroc = ood_auroc(id_scores, scores).item()
        for values, gid, label, color in (
            (id_scores, "histogram/id", "in-distribution", "tab:blue"),
            (scores, f"histogram/{name}", name, "tab:orange"),
        ):
            _, _, patches = ax.hist(as_numpy(values), bins=edges, density=True, alpha=0.5, color=color, label=label)
            for patch in patches:
                patch.set_gid(gid)
        ax.set(title=f"{name}: AUROC = {auroc:.4f}", xlabel=score_name, ylabel="density")
        ax.legend(loc="upper left")
    fig.suptitle(f"Score: {score_name}")
    return fig


def _check_shift_results(results: Mapping[str, Mapping[int, Mapping[str, float]]], metrics: tuple[str, ...]) -> None:
    if not isinstance(results, Mapping) or not results:
        raise ValueError(
            f"Expected `results` to be a non-empty dict corruption -> severity -> metrics, got {results!r}"
        )
    for corruption, by_severity in results.items():
        if not isinstance(by_severity, Mapping) or not by_severity:
            raise ValueError(f"Expected `results[{corruption!r}]` to be a non-empty dict severity -> metrics")
        for severity, values in by_severity.items():
            if not is_int(severity) or severity not in SEVERITIES:
                raise ValueError(f"Expected severities in `results[{corruption!r}]` to be ints 0–5, got {severity!r}")
            missing = [m for m in metrics if not isinstance(values, Mapping) or m not in values]
            if missing:
                raise ValueError(
                    f"Expected `results[{corruption!r}][{severity}]` to hold {list(metrics)}, missing {missing}"
                )


def plot_shift_curves(
    results: Mapping[str, Mapping[int, Mapping[str, float]]], *, metrics: tuple[str, ...] = ("acc", "ece")
) -> Figure:
    """Metrics against corruption severity (0 = clean, 1–5): one line per corruption plus their mean.

    One panel per metric. Line gids are ``"shift/<metric>/<corruption>"`` and ``"shift/<metric>/mean"``; the
    mean at a severity is over the corruptions that report that severity (severity 0, the clean set, is usually
    the same number for all of them). x values are the severities in increasing order.

    Args:
        results: corruption name → severity (int in 0–5) → metric name → value (float or 0-dim tensor); the
            shape of ``report["shift"]["per_corruption"]`` from :func:`~ugmm_vision.report.evaluation.build_report`.
        metrics: which metric keys to draw, one panel each (the report names accuracy ``"acc"``).

    Returns:
        A figure with one axes per metric, in the order of ``metrics``.

    Example:
        >>> results = {"noise": {0: {"acc": 0.9, "ece": 0.02}, 5: {"acc": 0.5, "ece": 0.2}},
        ...            "blur": {0: {"acc": 0.9, "ece": 0.02}, 5: {"acc": 0.7, "ece": 0.1}}}
        >>> fig = plot_shift_curves(results)
        >>> mean = next(line for line in fig.axes[0].lines if line.get_gid() == "shift/acc/mean")
        >>> mean.get_xydata().round(2).tolist()
        [[0.0, 0.9], [5.0, 0.6]]
    """
    if isinstance(metrics, str) or not metrics:
        raise ValueError(f"Expected `metrics` to be a non-empty tuple of metric names, got {metrics!r}")
    _check_shift_results(results, tuple(metrics))

    fig = new_figure(5.0 * len(metrics), 4.0)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        by_severity: dict[int, list[float]] = {}
        for corruption, values in results.items():
            severities = sorted(values)
            ys = [float(values[s][metric]) for s in severities]
            ax.plot(severities, ys, marker="o", alpha=0.6, gid=f"shift/{metric}/{corruption}", label=corruption)
            for severity, y in zip(severities, ys, strict=True):
                by_severity.setdefault(severity, []).append(y)
        severities = sorted(by_severity)
        mean = [math.fsum(by_severity[s]) / len(by_severity[s]) for s in severities]
        ax.plot(severities, mean, color="black", linewidth=2.5, marker="s", gid=f"shift/{metric}/mean", label="mean")
        ax.set(xticks=list(SEVERITIES), xlabel="severity (0 = clean)", ylabel=metric, title=f"{metric} under shift")
        ax.legend(fontsize="small")
    return fig


def report_figures(outputs: dict[str, EvalOutputs], report: dict, n_bins: int = 15) -> dict[str, Figure]:
    """The report's figures by file stem: reliability, risk_coverage, scores_<ood set>, shift.

    Args:
        outputs: the named sets' outputs (:mod:`ugmm_vision.report.collect`), ``"id"`` among them.
        report: their report (:func:`~ugmm_vision.report.build.build_report`): which OOD score was best, the
            shift metrics.
        n_bins: bins of the reliability diagram.
    """
    id_out = outputs["id"]
    probs = id_out.logits.double().softmax(dim=-1)
    correct = probs.argmax(dim=-1) == id_out.targets
    figures = {
        "reliability": plot_reliability_diagram(probs, id_out.targets, n_bins=n_bins),
        "risk_coverage": plot_risk_coverage({"msp": (max_softmax_probability(id_out.logits), correct)}),
    }
    for ood_name, best in report["ood_best"].items():
        score = best["score"]
        id_scores = id_out.scores((score,))[score]
        ood_scores = {ood_name: outputs[ood_name].scores((score,))[score]}
        figures[f"scores_{ood_name.replace('/', '_')}"] = plot_score_histograms(id_scores, ood_scores, score)
    if report["shift"]:
        clean = {k: report["id"][k] for k in ("acc", "ece", "nll")}
        curves = {c: {0: clean, **by_severity} for c, by_severity in report["shift"]["per_corruption"].items()}
        figures["shift"] = plot_shift_curves(curves)
    return figures
