"""The report folder: ``report.json``, ``report.md`` and one PNG per figure, replaced as one consistent report."""

from __future__ import annotations

import json
from pathlib import Path

from matplotlib.figure import Figure

from ugmm_vision.destinations import replace_files
from ugmm_vision.io import to_jsonable
from ugmm_vision.report.canvas import figure_bytes
from ugmm_vision.report.markdown import report_markdown

__all__ = ["REPORT_FILES", "write_report_folder"]

REPORT_FILES = ("report.json", "report.md", "reliability.png", "risk_coverage.png", "shift.png")
"""Files a report folder may hold besides ``scores_<ood set>.png``; a new report removes those it does not write."""


def write_report_folder(out_dir: Path, report: dict, figures: dict[str, Figure]) -> dict[str, str]:
    """Write ``report.json``, ``report.md`` and one PNG per figure into ``out_dir`` as one consistent report.

    Everything is rendered in memory and staged in temporary files first
    (:func:`~ugmm_vision.destinations.replace_files`): a failure part-way (a full disk) leaves the previous
    report as it was; plots of an older report that this one does not have (``shift.png`` after a run without
    shift, the histogram of an OOD set no longer evaluated) are removed. Sets ``report["paths"]`` and returns it.
    """
    out_dir = Path(out_dir)
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md"}
    files: dict[str, bytes] = {}
    for name, figure in figures.items():
        paths[name] = out_dir / f"{name}.png"
        files[paths[name].name] = figure_bytes(figure)
    report["paths"] = {name: str(path) for name, path in paths.items()}
    text = json.dumps(to_jsonable(report), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    files["report.md"] = report_markdown(report).encode("utf-8")
    files["report.json"] = text.encode("utf-8")
    owned = [*REPORT_FILES, *(p.name for p in out_dir.glob("scores_*.png")), *_listed_files(out_dir)]
    replace_files(out_dir, files, owned=owned, index=("report.json", "report.md"))
    return report["paths"]


def _listed_files(out_dir: Path) -> list[str]:
    """Names of the files the folder's current report.json lists in the folder (none if it is unreadable)."""
    try:
        listed = json.loads((out_dir / "report.json").read_text(encoding="utf-8")).get("paths", {})
    except (OSError, ValueError, AttributeError):
        return []
    if not isinstance(listed, dict):
        return []
    names = [Path(str(p)) for p in listed.values()]
    return [p.name for p in names if p.parent.resolve() == out_dir.resolve() and p.suffix in (".png", ".json", ".md")]
