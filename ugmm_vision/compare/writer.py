"""``compare_heads``: run the comparison and write ``compare.json``, ``compare.md`` and the plots.

``output_dir`` is checked before any training (a file, or a read-only folder, fails at once), and the four files
replace an earlier comparison as one (:func:`~ugmm_vision.destinations.replace_files`): a failure while
writing leaves the earlier comparison as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

from ugmm_vision.checks import check_n_bins
from ugmm_vision.compare.plots import plot_accuracy_vs_ece, plot_metric_bars
from ugmm_vision.compare.runner import run_comparison
from ugmm_vision.compare.summary import run_figures, summarize, summary_markdown
from ugmm_vision.destinations import check_output_dir, replace_files
from ugmm_vision.io import to_jsonable
from ugmm_vision.report.canvas import figure_bytes

__all__ = ["compare_heads", "write_comparison"]


def write_comparison(rows: list[dict], output_dir: str | Path, settings: dict | None = None) -> dict:
    """Write a finished comparison to ``output_dir``; returns ``{"summary", "runs", "paths", "settings"}``."""
    out = check_output_dir(output_dir, argument="output_dir")
    figures = [run_figures(row) for row in rows]
    summary = summarize(figures)
    paths = {
        "json": out / "compare.json",
        "markdown": out / "compare.md",
        "bars": out / "metric_bars.png",
        "scatter": out / "accuracy_vs_ece.png",
    }
    files = {
        paths["bars"].name: figure_bytes(plot_metric_bars(summary)),
        paths["scatter"].name: figure_bytes(plot_accuracy_vs_ece(figures)),
    }
    result = {
        "settings": settings or {},
        "summary": summary,
        "runs": figures,
        "reports": [{"head": r["head"], "seed": r["seed"], **r["report"]} for r in rows],
        "paths": {k: str(v) for k, v in paths.items()},
    }
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
    markdown = "\n".join(header) + summary_markdown(summary) + "\n".join(notes) + "\n"
    files["compare.md"] = markdown.encode("utf-8")
    text = json.dumps(to_jsonable(result), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    files["compare.json"] = text.encode("utf-8")
    replace_files(out, files, owned=[p.name for p in paths.values()], index=("compare.json", "compare.md"))
    return result


def compare_heads(*args, output_dir: str | Path = "outputs/compare", settings: dict | None = None, **kwargs) -> dict:
    """:func:`~ugmm_vision.compare.run_comparison` followed by :func:`write_comparison`."""
    check_output_dir(output_dir, argument="output_dir")  # before hours of training, not after
    check_n_bins(kwargs.get("n_bins", 15))
    kwargs.setdefault("log_dir", Path(output_dir) / "runs")  # per-run CSV logs: runs/<head>/seed_<seed>/
    rows = run_comparison(*args, **kwargs)
    return write_comparison(rows, output_dir, settings)
