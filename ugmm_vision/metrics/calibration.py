"""Calibration metrics torchmetrics lacks: NLL, Brier score, adaptive (equal-mass) ECE and class-wise ECE.

Top-label ECE / RMSCE / MCE stay torchmetrics'
:class:`~torchmetrics.classification.MulticlassCalibrationError`. Each class here is a thin state holder over
the ``_update`` / ``_compute`` steps of its functional twin in :mod:`ugmm_vision.functional`, so accumulating
batches (and processes) gives the functional result on the union. Running sums are kept in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from ugmm_vision.checks import check_n_bins, check_positive_int
from ugmm_vision.functional.calibration import (
    _adaptive_calibration_error_compute,
    _adaptive_calibration_error_update,
    _calibration_error_validate,
    _classwise_calibration_error_compute,
    _classwise_calibration_error_update,
)
from ugmm_vision.functional.proper_scoring import (
    _brier_score_update,
    _brier_score_validate,
    _mean_compute,
    _negative_log_likelihood_update,
    _negative_log_likelihood_validate,
)
from ugmm_vision.metrics._per_sample import _PerSampleMetric

__all__ = ["AdaptiveCalibrationError", "BrierScore", "ClasswiseCalibrationError", "NegativeLogLikelihood"]


class _MeanOfLoss(Metric):
    """Mean of a per-sample loss kept as a float64 (sum, count) pair, summed across processes."""

    is_differentiable = True
    higher_is_better = False
    full_state_update = False
    plot_lower_bound = 0.0

    total: Tensor
    count: Tensor

    def __init__(self, *, validate_args: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validate_args = validate_args
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def compute(self) -> Tensor:
        """Mean loss over every sample seen (NaN before any update)."""
        return _mean_compute(self.total, self.count).float()

    def _accumulate(
        self,
        validate: Callable[[Tensor, Tensor], None],
        update: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
        preds: Tensor,
        target: Tensor,
    ) -> None:
        """Check a batch with ``validate`` (when ``validate_args``) and add the (sum, count) of ``update``."""
        if self.validate_args:
            validate(preds, target)
        total, count = update(preds, target)
        self.total += total
        self.count += count


class NegativeLogLikelihood(_MeanOfLoss):
    """Mean negative log-likelihood (cross-entropy) of the targets under ``softmax(logits)``.

    Args:
        validate_args: check the inputs of every ``update`` (costs a device sync); turn off in tight loops.
        kwargs: passed to :class:`torchmetrics.Metric`.

    Example:
        >>> metric = NegativeLogLikelihood()
        >>> metric.update(torch.tensor([[2.0, 0.0]]), torch.tensor([0]))
        >>> metric.update(torch.tensor([[0.0, 0.0]]), torch.tensor([1]))
        >>> metric.compute()
        tensor(0.4100)
    """

    def update(self, logits: Tensor, target: Tensor) -> None:
        """Add a batch of logits (B, C) and class indices (B,)."""
        self._accumulate(_negative_log_likelihood_validate, _negative_log_likelihood_update, logits, target)


class BrierScore(_MeanOfLoss):
    """Multi-class Brier score: squared error to the one-hot target summed over classes, mean over samples.

    Args:
        validate_args: check the inputs of every ``update`` (costs a device sync); turn off in tight loops.
        kwargs: passed to :class:`torchmetrics.Metric`.

    Example:
        >>> metric = BrierScore()
        >>> metric.update(torch.tensor([[0.9, 0.1], [0.8, 0.2]]), torch.tensor([0, 1]))
        >>> metric.update(torch.tensor([[0.3, 0.7]]), torch.tensor([1]))
        >>> metric.compute()
        tensor(0.4933)
    """

    plot_upper_bound = 2.0

    def update(self, probs: Tensor, target: Tensor) -> None:
        """Add a batch of probabilities (B, C) and class indices (B,)."""
        self._accumulate(_brier_score_validate, _brier_score_update, probs, target)


class AdaptiveCalibrationError(_PerSampleMetric):
    """Top-label l1 calibration error over equal-mass bins (see
    :func:`ugmm_vision.functional.adaptive_calibration_error`).

    Equal-mass bins depend on all confidences, so the per-sample confidences are kept (``cat`` states).

    Args:
        n_bins: number of bins, each holding about N / n_bins samples.
        validate_args: check the inputs of every ``update`` (costs a device sync); turn off in tight loops.
        kwargs: passed to :class:`torchmetrics.Metric`.

    Example:
        >>> metric = AdaptiveCalibrationError(n_bins=2)
        >>> metric.update(torch.tensor([[0.9, 0.1], [0.8, 0.2]]), torch.tensor([0, 1]))
        >>> metric.update(torch.tensor([[0.3, 0.7], [0.4, 0.6]]), torch.tensor([1, 1]))
        >>> metric.compute()
        tensor(0.3500)
    """

    plot_upper_bound = 1.0

    def __init__(self, n_bins: int = 15, *, validate_args: bool = True, **kwargs: Any) -> None:
        super().__init__(validate_args=validate_args, **kwargs)
        check_n_bins(n_bins)
        self.n_bins = n_bins

    def update(self, probs: Tensor, target: Tensor) -> None:
        """Add a batch of probabilities (B, C) and class indices (B,)."""
        if self.validate_args:
            _calibration_error_validate(probs, target, self.n_bins)
        self._append(*_adaptive_calibration_error_update(probs, target))

    def compute(self) -> Tensor:
        """Adaptive ECE over every sample seen."""
        return _adaptive_calibration_error_compute(*self._gathered(), self.n_bins)


class ClasswiseCalibrationError(Metric):
    """Class-wise ECE (Kull et al. 2019), see :func:`ugmm_vision.functional.classwise_calibration_error`.

    Keeps per (class, bin) counts and sums, shape (num_classes, n_bins), summed across processes.

    Args:
        num_classes: number of classes C.
        n_bins: number of equal-width bins on [0, 1].
        validate_args: check the inputs of every ``update`` (costs a device sync); turn off in tight loops.
        kwargs: passed to :class:`torchmetrics.Metric`.

    Example:
        >>> metric = ClasswiseCalibrationError(num_classes=2, n_bins=2)
        >>> metric.update(torch.tensor([[0.9, 0.1], [0.8, 0.2]]), torch.tensor([0, 1]))
        >>> metric.update(torch.tensor([[0.3, 0.7], [0.4, 0.6]]), torch.tensor([1, 1]))
        >>> metric.compute()
        tensor(0.3500)
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    plot_lower_bound = 0.0
    plot_upper_bound = 1.0

    count: Tensor
    prob_sum: Tensor
    hit_sum: Tensor

    def __init__(self, num_classes: int, n_bins: int = 15, *, validate_args: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_positive_int("num_classes", num_classes)
        check_n_bins(n_bins)
        self.num_classes = num_classes
        self.n_bins = n_bins
        self.validate_args = validate_args
        for name in ("count", "prob_sum", "hit_sum"):
            self.add_state(name, default=torch.zeros(num_classes, n_bins, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, probs: Tensor, target: Tensor) -> None:
        """Add a batch of probabilities (B, num_classes) and class indices (B,)."""
        if self.validate_args:
            _calibration_error_validate(probs, target, self.n_bins)
            if probs.shape[1] != self.num_classes:
                raise ValueError(
                    f"Expected `probs` of shape (N, {self.num_classes}) (num_classes), got {tuple(probs.shape)}"
                )
        count, prob_sum, hit_sum = _classwise_calibration_error_update(probs, target, self.n_bins)
        self.count += count
        self.prob_sum += prob_sum
        self.hit_sum += hit_sum

    def compute(self) -> Tensor:
        """Class-wise ECE over every sample seen."""
        return _classwise_calibration_error_compute(self.count, self.prob_sum, self.hit_sum).float()
