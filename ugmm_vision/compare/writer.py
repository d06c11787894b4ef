"""``compare_heads``: run the comparison and write ``compare.json``, ``compare.md`` and the plots."""

from __future__ import annotations

from pathlib import Path

from ugmm_vision.compare.runner import run_comparison
from ugmm_vision.compare.summary import run_figures, summarize, summary_markdown
from ugmm_vision.report.compare_plots import plot_accuracy_vs_ece, plot_metric_bars
from ugmm_vision.report.io import atomic_write_text, save_figure, write_json

__all__ = ["compare_heads", "write_comparison"]


def write_comparison(rows: list[dict], output_dir: str | Path, settings: dict | None = None) -> dict:
    """Write a finished comparison to ``output_dir``; returns ``{"summary", "runs", "paths", "settings"}``."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = [run_figures(row) for row in rows]
    summary = summarize(figures)
    paths = {
        "json": out / "compare.json",
        "markdown": out / "compare.md",
        "bars": out / "metric_bars.png",
        "scatter": out / "accuracy_vs_ece.png",
    }
    save_figure(plot_metric_bars(summary), paths["bars"])
    save_figure(plot_accuracy_vs_ece(figures), paths["scatter"])
    result = {
        "settings": settings or {},
        "summary": summary,
        "runs": figures,
        "reports": [{"head": r["head"], "seed": r["seed"], **r["report"]} for r in rows],
        "paths": {k: str(v) for k, v in paths.items()},
    }
    write_json(paths["json"], result)
    header = ["# Head comparison", ""]
    if settings:
        header += ["```", *[f"{k}: {v}" for k, v in settings.items()], "```", ""]
    notes = [
        "",
        "Quality figures are on the in-distribution test set; OOD AUROCs are averaged over the OOD sets, the best",
        "score (in brackets after the head) is the one with the highest mean AUROC; 'head density' is the uGMM",
        "head's own log marginal density (`density_logsumexp`). TS = after temperature scaling fitted on the",
        "validation set. FLOPs follow the rule in `ugmm_vision/heads/cost.py`; times are wall-clock on this machine",
        "in this run.",
        "",
        "![metric bars](metric_bars.png)",
        "![accuracy vs ECE](accuracy_vs_ece.png)",
    ]
    atomic_write_text(paths["markdown"], "\n".join(header) + summary_markdown(summary) + "\n".join(notes) + "\n")
    return result


def compare_heads(*args, output_dir: str | Path = "outputs/compare", settings: dict | None = None, **kwargs) -> dict:
    """:func:`~ugmm_vision.compare.run_comparison` followed by :func:`write_comparison`."""
    rows = run_comparison(*args, **kwargs)
    return write_comparison(rows, output_dir, settings)
