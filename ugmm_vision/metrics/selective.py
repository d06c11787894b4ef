"""Selective-prediction metrics: AURC and AUGRC over every sample seen.

Both need the whole ranking of confidences, so per-sample ``confidence`` and ``correct`` are kept in ``cat``
states (gathered across processes before ``compute``). Ties are handled as in
:mod:`ugmm_vision.functional.selective` (independent of sample order, hence of the process layout).
"""

from __future__ import annotations

import torch  # noqa: F401 - the examples below (doctests) use it
from torch import Tensor

from ugmm_vision.functional.selective import (
    _augrc_compute,
    _aurc_compute,
    _selective_update,
    _selective_validate,
)
from ugmm_vision.metrics._per_sample import _PerSampleMetric

__all__ = ["AUGRC", "AURC"]


class _SelectiveMetric(_PerSampleMetric):
    """Keeps per-sample confidence and correctness; subclasses pick the area."""

    def update(self, confidence: Tensor, correct: Tensor) -> None:
        """Add a batch of confidences (B,) and correctness flags (B,), bool or 0/1."""
        if self.validate_args:
            _selective_validate(confidence, correct)
        self._append(*_selective_update(confidence, correct))


class AURC(_SelectiveMetric):
    """Area under the risk–coverage curve, see :func:`ugmm_vision.functional.aurc`.

    Args:
        validate_args: check the inputs of every ``update`` (costs a device sync); turn off in tight loops.
        kwargs: passed to :class:`torchmetrics.Metric`.

    Example:
        >>> metric = AURC()
        >>> metric.update(torch.tensor([0.9, 0.8]), torch.tensor([True, False]))
        >>> metric.update(torch.tensor([0.7, 0.6]), torch.tensor([True, False]))
        >>> metric.compute()
        tensor(0.3333)
    """

    plot_upper_bound = 1.0

    def compute(self) -> Tensor:
        """AURC over every sample seen."""
        return _aurc_compute(*self._gathered())


class AUGRC(_SelectiveMetric):
    """Area under the generalised risk–coverage curve (Traub et al. 2024).

    See :func:`ugmm_vision.functional.augrc`.

    Args:
        validate_args: check the inputs of every ``update`` (costs a device sync); turn off in tight loops.
        kwargs: passed to :class:`torchmetrics.Metric`.

    Example:
        >>> metric = AUGRC()
        >>> metric.update(torch.tensor([0.9, 0.8]), torch.tensor([True, False]))
        >>> metric.update(torch.tensor([0.7, 0.6]), torch.tensor([True, False]))
        >>> metric.compute()
        tensor(0.1875)
    """

    plot_upper_bound = 0.5

    def compute(self) -> Tensor:
        """AUGRC over every sample seen."""
        return _augrc_compute(*self._gathered())
