"""The evaluation report as readable Markdown (``report.md``) and as a short console summary."""

from __future__ import annotations

from ugmm_vision.report.io import markdown_table

__all__ = ["report_markdown", "report_summary_rows"]

ID_METRICS = ("acc", "nll", "brier", "ece", "rmsce", "mce", "aece", "cwce", "aurc", "augrc", "risk@90cov")


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def report_summary_rows(report: dict) -> list[dict[str, str]]:
    """The headline figures: accuracy, NLL, ECE, Brier, AURC, best OOD AUROC and mean shift accuracy/ECE.

    Example:
        >>> rows = report_summary_rows({"id": {"acc": 0.9, "nll": 0.3, "ece": 0.05, "brier": 0.1, "aurc": 0.02},
        ...                             "ood_best": {}, "shift": {}})
        >>> rows[0]
        {'metric': 'accuracy', 'value': '0.9000', 'after temperature scaling': '—'}
    """
    ident, scaled = report["id"], report.get("id_temperature_scaled", {})
    rows = [
        {"metric": label, "value": _fmt(ident[key]), "after temperature scaling": _fmt(scaled.get(key))}
        for label, key in (("accuracy", "acc"), ("NLL", "nll"), ("ECE", "ece"), ("Brier", "brier"), ("AURC", "aurc"))
    ]
    for name, best in report.get("ood_best", {}).items():
        msp = report["ood"][name].get("msp", {}).get("auroc")
        rows.append({"metric": f"OOD AUROC {name} (msp)", "value": _fmt(msp), "after temperature scaling": "—"})
        if best["score"] != "msp":
            rows.append(
                {
                    "metric": f"OOD AUROC {name} (best: {best['score']})",
                    "value": _fmt(best["auroc"]),
                    "after temperature scaling": "—",
                }
            )
    if report.get("shift"):
        mean = report["shift"]["mean"]
        rows.append({"metric": "shift: mean accuracy", "value": _fmt(mean["acc"]), "after temperature scaling": "—"})
        rows.append({"metric": "shift: mean ECE", "value": _fmt(mean["ece"]), "after temperature scaling": "—"})
    for level, metrics in _conformal_levels(report):
        for label, key in (("coverage", "coverage"), ("mean set size", "mean_set_size")):
            rows.append({"metric": f"conformal {label} ({level})", "value": _fmt(metrics[key])})
            rows[-1]["after temperature scaling"] = "—"
    if report.get("method"):
        cost = report["method"]
        rows.append(
            {
                "metric": f"method {cost['method']}: forward passes / members",
                "value": f"{cost['forward_passes']} / {cost['members']}",
                "after temperature scaling": "—",
            }
        )
    return rows


def _conformal_levels(report: dict) -> list[tuple[str, dict]]:
    """``[("α=0.1", {...}), …]`` from the report's conformal section (empty without one)."""
    section = report.get("conformal") or {}
    return [(key.replace("alpha", "α"), value) for key, value in section.items() if key.startswith("alpha=")]


def report_markdown(report: dict) -> str:
    """Every section of the report as Markdown tables."""
    columns = ["metric", "value", "after temperature scaling"]
    parts = ["# Evaluation report", "", "## Summary", "", markdown_table(report_summary_rows(report), columns)]
    scaled = report.get("id_temperature_scaled")
    parts += ["", "## In-distribution test set", ""]
    if scaled:
        parts.append(f"Temperature fitted on the validation set (NLL, LBFGS): T = {scaled['temperature']:.4f}.")
        parts.append("")
    rows = [
        {"metric": k, "value": _fmt(report["id"][k]), "after temperature scaling": _fmt((scaled or {}).get(k))}
        for k in ID_METRICS
    ]
    parts.append(markdown_table(rows, columns))
    if report.get("ood"):
        parts += ["", "## Out-of-distribution detection (in-distribution = positive)", ""]
        rows = [
            {"set": name, "score": score, **{k: _fmt(v) for k, v in m.items()}}
            for name, by_score in report["ood"].items()
            for score, m in by_score.items()
        ]
        parts.append(markdown_table(rows, ["set", "score", "auroc", "aupr_in", "aupr_out", "fpr95"]))
    if report.get("shift"):
        parts += ["", "## Corruption shift (accuracy / ECE per severity)", ""]
        per = report["shift"]["per_corruption"]
        severities = sorted({s for by in per.values() for s in by})
        rows = [
            {"corruption": c, **{f"severity {s}": f"{by[s]['acc']:.3f} / {by[s]['ece']:.3f}" for s in by}}
            for c, by in per.items()
        ]
        mean = report["shift"]["mean_by_severity"]
        rows.append(
            {
                "corruption": "mean",
                **{f"severity {s}": f"{mean[s]['acc']:.3f} / {mean[s]['ece']:.3f}" for s in severities},
            }
        )
        parts.append(markdown_table(rows, ["corruption", *[f"severity {s}" for s in severities]]))
    if report.get("conformal"):
        parts += ["", f"## Conformal prediction sets ({report['conformal']['score'].upper()}, calibrated on val)", ""]
        rows = [
            {"level": level, "coverage": _fmt(m["coverage"]), "mean set size": _fmt(m["mean_set_size"])}
            for level, m in _conformal_levels(report)
        ]
        parts.append(markdown_table(rows, ["level", "coverage", "mean set size"]))
    if report.get("method"):
        parts += ["", "## Method (test-time cost)", "", markdown_table([report["method"]], list(report["method"]))]
    if "meta" in report:
        parts += ["", "## Run", "", "```", *[f"{k}: {v}" for k, v in report["meta"].items()], "```"]
    return "\n".join(parts) + "\n"
