"""Markdown: GitHub-flavoured tables, the evaluation report as readable Markdown (``report.md``) and as a short
console summary."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ugmm_vision.checks import is_real

__all__ = ["markdown_table", "report_markdown", "report_summary_rows"]


def _unwrap(value: Any) -> Any:
    """A 0-dim tensor or array, or a numpy scalar, as a Python scalar; anything else unchanged."""
    if (isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0) or isinstance(value, np.generic):
        return value.item()
    return value


def _cell(value: Any, float_format: str) -> str:
    value = _unwrap(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else format(value, float_format)
    text = str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


def markdown_table(rows: list[dict[str, Any]], columns: list[str], *, float_format: str = ".4f") -> str:
    """A GitHub-flavoured Markdown table of ``rows`` restricted to ``columns``, in that order.

    Floats are formatted with ``float_format`` (NaN is written ``nan``); 0-dim tensors are unwrapped; a missing
    key or ``None`` gives an empty cell; ``|`` is escaped and newlines become spaces. Columns whose cells are all
    numbers are right-aligned.

    Args:
        rows: one dict per table row.
        columns: keys to show, in order; also the header.
        float_format: format spec for floats, e.g. ``".4f"`` or ``".2%"``.

    Returns:
        The table, one line per row, ending with a newline.

    Example:
        >>> rows = [{"head": "linear", "acc": 0.91234, "ece": 0.05}, {"head": "ugmm", "acc": 0.9, "ece": None}]
        >>> print(markdown_table(rows, ["head", "acc", "ece"]), end="")
        | head | acc | ece |
        | --- | ---: | ---: |
        | linear | 0.9123 | 0.0500 |
        | ugmm | 0.9000 |  |
    """
    if isinstance(columns, str) or not isinstance(columns, Sequence) or not columns:
        raise ValueError(f"Expected `columns` to be a non-empty list of keys, got {columns!r}")
    if not isinstance(rows, Sequence) or not all(isinstance(row, Mapping) for row in rows):
        raise ValueError("Expected `rows` to be a list of dicts")
    try:
        format(1.0, float_format)
    except (ValueError, TypeError) as err:
        raise ValueError(f"Expected `float_format` to be a float format spec, got {float_format!r}") from err

    def numeric(column: str) -> bool:
        values = [_unwrap(row.get(column)) for row in rows if row.get(column) is not None]
        return bool(values) and all(is_real(v) for v in values)

    header = [_cell(column, float_format) for column in columns]
    rule = ["---:" if numeric(column) else "---" for column in columns]
    body = [[_cell(row.get(column), float_format) for column in columns] for row in rows]
    return "".join("| " + " | ".join(line) + " |\n" for line in [header, rule, *body])


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
