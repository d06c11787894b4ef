"""Per-run figures of a comparison, their mean ± std per head, and the Markdown/JSON output."""

from __future__ import annotations

import math
import statistics

__all__ = ["COLUMNS", "run_figures", "summarize", "summary_markdown"]

COLUMNS = {
    "acc": "accuracy",
    "nll": "NLL",
    "ece": "ECE",
    "brier": "Brier",
    "aurc": "AURC",
    "ood_auroc_best": "OOD AUROC (best score)",
    "ood_auroc_density": "OOD AUROC (head density)",
    "ood_auroc_mi": "OOD AUROC (mutual information)",
    "ood_auroc_feature_density": "OOD AUROC (feature density)",
    "cp_coverage_0.1": "conformal coverage (α=0.1)",
    "cp_set_size_0.1": "set size (α=0.1)",
    "cp_coverage_0.05": "conformal coverage (α=0.05)",
    "cp_set_size_0.05": "set size (α=0.05)",
    "shift_acc": "shift: accuracy",
    "shift_ece": "shift: ECE",
    "ts_acc": "TS: accuracy",
    "ts_nll": "TS: NLL",
    "ts_ece": "TS: ECE",
    "ts_brier": "TS: Brier",
    "params": "head parameters",
    "flops": "head FLOPs / image",
    "train_s_per_epoch": "train s / epoch",
    "head_latency_us": "head µs / image",
    "model_latency_us": "model µs / image",
    "forward_passes": "test forward passes",
    "members": "members",
}
"""Figure key → column title, in table order."""


def run_figures(row: dict) -> dict:
    """The figures of one run (a row of :func:`~ugmm_vision.compare.run_comparison`), flat and JSON-ready.

    OOD AUROCs are averaged over the OOD sets; the best score is the one with the highest mean AUROC. The head's
    own density score (``density_logsumexp``, the log marginal density of the class neurons) exists for uGMM heads
    only; mutual information exists for sampling methods (MC dropout, ensembles), feature density for DDU rows.
    Conformal coverage and mean set size (APS, calibrated on the validation set) exist for every row.
    """
    report = row["report"]
    ident, scaled = report["id"], report.get("id_temperature_scaled", {})
    by_score: dict[str, list[float]] = {}
    for per_score in report["ood"].values():
        for score, metrics in per_score.items():
            by_score.setdefault(score, []).append(metrics["auroc"])
    mean_auroc = {score: statistics.fmean(values) for score, values in by_score.items()}
    best = max(mean_auroc, key=mean_auroc.get) if mean_auroc else None
    shift = report.get("shift") or {}
    return {
        "head": row["head"],
        "seed": row["seed"],
        **{k: ident[k] for k in ("acc", "nll", "ece", "brier", "aurc")},
        "ood_auroc_best": mean_auroc.get(best),
        "ood_best_score": best,
        "ood_auroc_density": mean_auroc.get("density_logsumexp") if row["is_ugmm"] else None,
        "shift_acc": shift.get("mean", {}).get("acc"),
        "shift_ece": shift.get("mean", {}).get("ece"),
        **{f"ts_{k}": scaled.get(k) for k in ("acc", "nll", "ece", "brier")},
        "temperature": scaled.get("temperature"),
        **{k: row[k] for k in ("params", "flops", "train_s_per_epoch", "head_latency_us", "model_latency_us")},
        "ood_auroc_mi": mean_auroc.get("neg_mutual_information"),
        "ood_auroc_feature_density": mean_auroc.get("feature_density"),
        **{
            f"cp_{key}_{alpha}": (report.get("conformal") or {}).get(f"alpha={alpha}", {}).get(name)
            for alpha in ("0.1", "0.05")
            for key, name in (("coverage", "coverage"), ("set_size", "mean_set_size"))
        },
        "forward_passes": row.get("forward_passes", 1),
        "members": row.get("members", 1),
    }


def summarize(figures: list[dict]) -> dict[str, dict]:
    """Mean and (sample) standard deviation over seeds of every numeric figure, per head, in first-seen order.

    Example:
        >>> s = summarize([{"head": "a", "seed": 0, "acc": 0.9}, {"head": "a", "seed": 1, "acc": 0.8}])
        >>> round(s["a"]["acc"]["mean"], 3), round(s["a"]["acc"]["std"], 4), s["a"]["acc"]["n"]
        (0.85, 0.0707, 2)
    """
    heads: dict[str, dict] = {}
    for fig in figures:
        heads.setdefault(fig["head"], []).append(fig)
    summary = {}
    for head, runs in heads.items():
        stats: dict = {"seeds": [r["seed"] for r in runs]}
        best_scores = [r.get("ood_best_score") for r in runs if r.get("ood_best_score")]
        if best_scores:
            stats["ood_best_score"] = max(set(best_scores), key=best_scores.count)
        for key in COLUMNS:
            values = [r[key] for r in runs if isinstance(r.get(key), (int, float)) and not math.isnan(r[key])]
            if values:
                stats[key] = {
                    "mean": statistics.fmean(values),
                    "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "n": len(values),
                }
        summary[head] = stats
    return summary


def _cell(stat: dict | None, key: str) -> str:
    if stat is None:
        return "—"
    if key in ("params", "flops", "forward_passes", "members"):
        return f"{stat['mean']:,.0f}"
    digits = 1 if key in ("head_latency_us", "model_latency_us") else 2 if key == "train_s_per_epoch" else 4
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def summary_markdown(summary: dict[str, dict]) -> str:
    """Two Markdown tables: quality (mean ± std over seeds) and cost, one row per head."""
    cost = ["params", "flops", "train_s_per_epoch", "head_latency_us", "model_latency_us", "forward_passes", "members"]
    quality = [k for k in COLUMNS if k not in cost]
    lines = []
    for title, keys in (("Quality (mean ± std over seeds)", quality), ("Cost", cost)):
        present = [k for k in keys if any(k in stats for stats in summary.values())]
        lines += [f"### {title}", "", "| head | " + " | ".join(COLUMNS[k] for k in present) + " |"]
        lines.append("|---" * (len(present) + 1) + "|")
        for head, stats in summary.items():
            name = head + (
                f" ({stats['ood_best_score']})" if title.startswith("Quality") and stats.get("ood_best_score") else ""
            )
            lines.append(f"| {name} | " + " | ".join(_cell(stats.get(k), k) for k in present) + " |")
        lines.append("")
    return "\n".join(lines)
