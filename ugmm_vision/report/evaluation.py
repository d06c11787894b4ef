"""Renamed :mod:`ugmm_vision.report.build` (the report from outputs; :func:`concat_outputs` is in
:mod:`ugmm_vision.report.collect`); re-exported here for one release."""

from ugmm_vision.report.build import (
    DENSITY_SCORES,
    LOGIT_SCORES,
    EvalOutputs,
    build_report,
    classification_metrics,
    ood_metrics,
    shift_metrics,
)
from ugmm_vision.report.collect import concat_outputs

__all__ = [
    "DENSITY_SCORES",
    "LOGIT_SCORES",
    "EvalOutputs",
    "build_report",
    "classification_metrics",
    "concat_outputs",
    "ood_metrics",
    "shift_metrics",
]
