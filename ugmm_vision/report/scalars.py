"""A report's numbers as flat ``a/b/c`` keys: what a Lightning logger's ``log_metrics`` takes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ugmm_vision.checks import is_real

__all__ = ["report_scalars"]


def report_scalars(report: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Every finite number of a nested report, keyed by its path; lists, strings, None and NaN are left out.

    Args:
        report: a report (nested dicts), e.g. :func:`~ugmm_vision.report.evaluate_model`'s.
        prefix: put before every key (``"test/"``).

    Example:
        >>> report_scalars({"id": {"accuracy": 0.9, "ece": 0.01}, "paths": {"json": "r.json"}, "n": 3}, "test/")
        {'test/id/accuracy': 0.9, 'test/id/ece': 0.01, 'test/n': 3.0}
    """
    flat: dict[str, float] = {}
    for key, value in report.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(report_scalars(value, f"{name}/"))
        elif is_real(value) and math.isfinite(value):
            flat[name] = float(value)
    return flat
