"""The state holder of the metrics that need every sample's confidence and correctness (AURC, AUGRC, adaptive ECE).

Rankings and equal-mass bins depend on all confidences at once, so they cannot be summed batch by batch: the
per-sample values are kept in ``cat`` states, gathered across processes before ``compute``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

__all__: list[str] = []


class _PerSampleMetric(Metric):
    """Keeps per-sample ``confidence`` and ``correct`` in ``cat`` states; subclasses validate and compute."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    plot_lower_bound = 0.0

    confidence: list[Tensor]
    correct: list[Tensor]

    def __init__(self, *, validate_args: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validate_args = validate_args
        self.add_state("confidence", default=[], dist_reduce_fx="cat")
        self.add_state("correct", default=[], dist_reduce_fx="cat")

    def _append(self, confidence: Tensor, correct: Tensor) -> None:
        self.confidence.append(confidence)
        self.correct.append(correct.to(torch.uint8))  # uint8: bool is not gathered by every backend

    def _gathered(self) -> tuple[Tensor, Tensor]:
        return dim_zero_cat(self.confidence), dim_zero_cat(self.correct).bool()
