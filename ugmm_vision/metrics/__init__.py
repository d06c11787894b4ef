"""torchmetrics ``Metric`` classes for what torchmetrics lacks; twins in :mod:`ugmm_vision.functional`.

Top-label ECE / RMSCE / MCE, accuracy and AUROC come from torchmetrics itself
(e.g. :class:`torchmetrics.classification.MulticlassCalibrationError`).
"""

from ugmm_vision.metrics.calibration import (
    AdaptiveCalibrationError,
    BrierScore,
    ClasswiseCalibrationError,
    NegativeLogLikelihood,
)
from ugmm_vision.metrics.ood import OODDetection
from ugmm_vision.metrics.selective import AUGRC, AURC

__all__ = [
    "AUGRC",
    "AURC",
    "AdaptiveCalibrationError",
    "BrierScore",
    "ClasswiseCalibrationError",
    "NegativeLogLikelihood",
    "OODDetection",
]
