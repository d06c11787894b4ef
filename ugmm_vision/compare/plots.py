"""Figures of a head comparison: metric bars with error bars, and accuracy against ECE per seed."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from ugmm_vision.report.canvas import new_figure

__all__ = ["plot_accuracy_vs_ece", "plot_metric_bars"]


def plot_metric_bars(
    summary: dict[str, dict], metrics: Sequence[str] = ("acc", "nll", "ece", "ood_auroc_best")
) -> Figure:
    """One panel per metric: a bar per head at the mean over seeds, error bars of one standard deviation.

    Bars carry ``gid="bars/<metric>"``; their heights are the summary's means.

    Example:
        >>> fig = plot_metric_bars({"linear": {"acc": {"mean": 0.9, "std": 0.01, "n": 3}}}, metrics=["acc"])
        >>> [round(float(b.get_height()), 2) for b in fig.axes[0].patches]
        [0.9]
    """
    heads = list(summary)
    present = [m for m in metrics if any(m in summary[h] for h in heads)]
    if not present:
        raise ValueError(f"Expected `summary` to hold at least one of `metrics` {list(metrics)}, got none")
    fig = new_figure(3.2 * len(present), 3.4)
    for i, metric in enumerate(present):
        ax = fig.add_subplot(1, len(present), i + 1)
        names = [h for h in heads if metric in summary[h]]
        means = [summary[h][metric]["mean"] for h in names]
        stds = [summary[h][metric]["std"] for h in names]
        bars = ax.bar(range(len(names)), means, yerr=stds, capsize=4, color="tab:blue", alpha=0.8)
        for bar in bars:
            bar.set_gid(f"bars/{metric}")
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(metric)
    return fig


def plot_accuracy_vs_ece(figures: list[dict]) -> Figure:
    """Scatter of test accuracy (x) against ECE (y), one point per run, one colour per head.

    Point sets carry ``gid="scatter/<head>"``; their offsets are the runs' (accuracy, ECE).

    Example:
        >>> fig = plot_accuracy_vs_ece([{"head": "h", "acc": 0.9, "ece": 0.05}])
        >>> fig.axes[0].collections[0].get_offsets().tolist()
        [[0.9, 0.05]]
    """
    if not figures:
        raise ValueError("Expected `figures` to hold at least one run, got none")
    fig = new_figure(5, 4)
    ax = fig.add_subplot()
    for head in dict.fromkeys(f["head"] for f in figures):
        runs = [f for f in figures if f["head"] == head]
        points = ax.scatter([r["acc"] for r in runs], [r["ece"] for r in runs], label=head)
        points.set_gid(f"scatter/{head}")
    ax.set_xlabel("test accuracy")
    ax.set_ylabel("ECE")
    ax.legend(fontsize=8)
    return fig
