"""Budget sensitivity of the evidence study: test accuracy, ECE and NLL against fine-tuning epochs (docs/results.md).

Reads the ``compare.json`` of runs that differ only in their budget (``configs/evidence_budget.yaml``, one run per
budget; the 2-epoch point may come from ``configs/evidence_fmnist.yaml``, whose seed-0 runs of the same heads use
the same set-up), prints a Markdown table and draws ``docs/images/budget_sensitivity.png``. Rows of heads missing
from a file are simply absent from that budget; with several seeds per budget, the mean is drawn.

    python benchmarks/evidence/budget_plot.py '[outputs/evidence/budget/epochs_1/compare.json, ...]'
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from jsonargparse import CLI

HEADS = ("linear", "ugmm_single_layer", "ugmm_hidden")
METRICS = (("acc", "test accuracy"), ("ece", "test ECE"), ("ts_ece", "test ECE after TS"), ("nll", "test NLL"))


def collect(paths: list[str], seeds: list[int]) -> dict[str, dict[int, dict[str, float]]]:
    """head → epochs → metric → mean over the chosen seeds."""
    values: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for path in paths:
        data = json.loads(Path(path).read_text())
        epochs = int(data["settings"]["epochs"])
        for run in data["runs"]:
            if run["head"] in HEADS and run["seed"] in seeds:
                for key, _ in METRICS:
                    values[run["head"]][epochs][key].append(run[key])
    return {
        head: {e: {k: statistics.fmean(v) for k, v in by_metric.items()} for e, by_metric in sorted(by_epoch.items())}
        for head, by_epoch in values.items()
    }


def main(
    compare_json: list[str],
    seeds: list[int] = [0],  # noqa: B006 - shown in --help
    output: str = "docs/images/budget_sensitivity.png",
    title: str = "Fashion-MNIST, SmallCNN (16, 32, 64) fine-tuned with each head",
    xlabel: str = "fine-tuning epochs (cosine over the budget)",
) -> None:
    """Print the table and write the plot.

    Args:
        compare_json: compare.json files, one budget each (settings.epochs tells which).
        seeds: seeds to average (the budget runs use seed 0).
        output: the PNG.
        title: the figure's title (the seeds are appended).
        xlabel: the x axis's label.
    """
    table = collect(compare_json, seeds)
    print("| head | epochs | " + " | ".join(name for _, name in METRICS) + " |")
    print("|---|---:|" + "---:|" * len(METRICS))
    for head, by_epoch in table.items():
        for epochs, metrics in by_epoch.items():
            print(f"| {head} | {epochs} | " + " | ".join(f"{metrics[k]:.4f}" for k, _ in METRICS) + " |")
    figure, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.4), constrained_layout=True)
    for ax, (key, metric_title) in zip(axes, METRICS, strict=True):
        for head, by_epoch in table.items():
            epochs = list(by_epoch)
            ax.plot(epochs, [by_epoch[e][key] for e in epochs], marker="o", label=head)
        ax.set_xscale("log")
        ax.set_xticks(sorted({e for h in table.values() for e in h}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel(xlabel)
        ax.set_title(metric_title)
        ax.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle(f"{title}; seed{'s' if len(seeds) > 1 else ''} " + ", ".join(map(str, seeds)))
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=120)
    print(f"\nPlot: {output}")


if __name__ == "__main__":
    CLI(main)
