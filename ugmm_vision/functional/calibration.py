"""Binned calibration errors and the data of a reliability diagram.

Top-label ECE/RMSCE/MCE is torchmetrics' ``multiclass_calibration_error`` (validated and wrapped here so that
it shares the argument checks of the other metrics). This file adds what torchmetrics lacks: the equal-mass
(adaptive) ECE, the class-wise ECE and the per-bin data a reliability diagram draws.

Binning conventions:

* Equal-width bins split [0, 1] into ``n_bins`` intervals ``[e_i, e_{i+1})``; the last one is closed, so a
  confidence of exactly 1.0 falls in the last bin. torchmetrics instead puts exactly-1.0 confidences in an
  extra bin of their own; the two agree whenever no confidence equals 1.0.
* Equal-mass bins cut the sorted confidences at the positions ``floor(b·N / n_bins)``; a confidence equal to a
  cut value goes to the upper bin, so tied confidences always share a bin and the result does not depend on
  the order of the samples (bins hold N / n_bins samples each when there are no ties).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional.classification import multiclass_calibration_error

from ugmm_vision.checks import check_n_bins, check_probs, check_target

__all__ = [
    "ReliabilityDiagram",
    "adaptive_calibration_error",
    "classwise_calibration_error",
    "expected_calibration_error",
    "reliability_diagram_data",
]

_NORMS = ("l1", "l2", "max")


class ReliabilityDiagram(NamedTuple):
    """Per-bin data of a reliability diagram (equal-width bins).

    Attributes:
        confidence: mean top-label confidence per bin, shape (n_bins,); NaN for empty bins.
        accuracy: fraction of correct top-label predictions per bin, shape (n_bins,); NaN for empty bins.
        count: number of samples per bin, shape (n_bins,), int64.
        bin_edges: bin boundaries from 0 to 1, shape (n_bins + 1,).
    """

    confidence: Tensor
    accuracy: Tensor
    count: Tensor
    bin_edges: Tensor


def _out_dtype(x: Tensor) -> torch.dtype:
    return torch.promote_types(x.dtype, torch.float32)


def _calibration_error_validate(probs: Tensor, target: Tensor, n_bins: int, norm: str = "l1") -> None:
    check_probs(probs)
    check_target(target, probs.shape[0], probs.shape[1])
    check_n_bins(n_bins)
    if norm not in _NORMS:
        raise ValueError(f"Expected `norm` to be one of {_NORMS}, got {norm!r}")


def _top_label(probs: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Top-label confidence (N,) and whether the top label is right (N,) bool."""
    confidence, prediction = probs.max(dim=1)  # (N,), (N,)
    return confidence, prediction == target


def _uniform_bins(values: Tensor, n_bins: int) -> tuple[Tensor, Tensor]:
    """Equal-width bin index of every value in [0, 1] (last bin closed) and the bin edges."""
    edges = torch.linspace(0, 1, n_bins + 1, dtype=values.dtype, device=values.device)  # (n_bins + 1,)
    index = (torch.bucketize(values, edges, right=True) - 1).clamp(0, n_bins - 1)
    return index, edges


def _reliability_update(probs: Tensor, target: Tensor, n_bins: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-bin count, confidence sum and hit sum (float64, each (n_bins,)) and the bin edges."""
    confidence, correct = _top_label(probs, target)
    index, edges = _uniform_bins(confidence, n_bins)
    zeros = torch.zeros(n_bins, dtype=torch.float64, device=probs.device)
    count = zeros.index_add(0, index, torch.ones_like(confidence, dtype=torch.float64))
    conf_sum = zeros.index_add(0, index, confidence.double())
    hit_sum = zeros.index_add(0, index, correct.double())
    return count, conf_sum, hit_sum, edges


def expected_calibration_error(
    probs: Tensor, target: Tensor, n_bins: int = 15, norm: Literal["l1", "l2", "max"] = "l1"
) -> Tensor:
    """Top-label calibration error over equal-width confidence bins (torchmetrics' definition).

    ``norm="l1"`` is the ECE (bin-weighted mean of ``|accuracy − confidence|``), ``"l2"`` the RMS calibration
    error and ``"max"`` the MCE (largest gap over non-empty bins). Computed by
    :func:`torchmetrics.functional.classification.multiclass_calibration_error`, so it matches
    :class:`torchmetrics.classification.MulticlassCalibrationError`. A single class (C = 1) is allowed.

    Args:
        probs: class probabilities, shape (N, C), values in [0, 1].
        target: class indices, shape (N,).
        n_bins: number of equal-width bins on [0, 1].
        norm: ``"l1"``, ``"l2"`` or ``"max"``.

    Returns:
        Scalar tensor, lower is better.

    Example:
        >>> probs = torch.tensor(
        ...     [[0.25, 0.20, 0.55], [0.55, 0.05, 0.40], [0.10, 0.30, 0.60], [0.90, 0.05, 0.05]]
        ... )
        >>> target = torch.tensor([0, 1, 2, 0])
        >>> expected_calibration_error(probs, target, n_bins=3)
        tensor(0.2000)
        >>> expected_calibration_error(probs, target, n_bins=3, norm="max")
        tensor(0.2333)
    """
    _calibration_error_validate(probs, target, n_bins, norm)
    if probs.shape[1] == 1:
        # torchmetrics needs C >= 2; a zero-probability extra class changes neither top label nor confidence.
        probs = F.pad(probs, (0, 1))  # (N, 2)
    result = multiclass_calibration_error(
        probs, target, num_classes=probs.shape[1], n_bins=n_bins, norm=norm, validate_args=False
    )
    return result.to(torch.float32)  # torchmetrics returns an int64 zero for a perfect l2 score


def reliability_diagram_data(probs: Tensor, target: Tensor, n_bins: int = 15) -> ReliabilityDiagram:
    """Mean confidence, accuracy and count of the top-label predictions in each equal-width bin.

    ``sum(count * |accuracy − confidence|) / N`` over non-empty bins is the l1 ECE (equal to
    :func:`expected_calibration_error` when no confidence is exactly 1.0, see the module notes).

    Args:
        probs: class probabilities, shape (N, C), values in [0, 1].
        target: class indices, shape (N,).
        n_bins: number of equal-width bins on [0, 1].

    Returns:
        A :class:`ReliabilityDiagram`; empty bins have ``count == 0`` and NaN confidence and accuracy.

    Example:
        >>> probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
        >>> target = torch.tensor([0, 1, 1, 1])
        >>> data = reliability_diagram_data(probs, target, n_bins=2)
        >>> data.confidence, data.accuracy, data.count
        (tensor([   nan, 0.7500]), tensor([   nan, 0.7500]), tensor([0, 4]))
        >>> data.bin_edges
        tensor([0.0000, 0.5000, 1.0000])
    """
    _calibration_error_validate(probs, target, n_bins)
    count, conf_sum, hit_sum, edges = _reliability_update(probs, target, n_bins)
    dtype = _out_dtype(probs)
    return ReliabilityDiagram(
        confidence=(conf_sum / count).to(dtype),  # 0 / 0 = NaN marks empty bins
        accuracy=(hit_sum / count).to(dtype),
        count=count.long(),
        bin_edges=edges.to(dtype),
    )


def _adaptive_calibration_error_update(probs: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Top-label confidence (N,) and correctness (N,) bool: equal-mass bins need the whole set."""
    return _top_label(probs, target)


def _adaptive_calibration_error_compute(confidence: Tensor, correct: Tensor, n_bins: int) -> Tensor:
    """Equal-mass-binned l1 calibration error of top-label ``confidence`` against ``correct``."""
    conf = confidence.double()
    n = conf.numel()
    sorted_conf = conf.sort().values  # (N,)
    cut = torch.arange(1, n_bins, device=conf.device) * n // n_bins  # (n_bins - 1,) first position of bin b
    index = torch.bucketize(conf, sorted_conf[cut], right=True)  # (N,) ties with a cut value go up
    zeros = torch.zeros(n_bins, dtype=torch.float64, device=conf.device)
    gap = zeros.index_add(0, index, correct.double()) - zeros.index_add(0, index, conf)  # (n_bins,)
    return (gap.abs().sum() / n).to(_out_dtype(confidence))


def adaptive_calibration_error(probs: Tensor, target: Tensor, n_bins: int = 15) -> Tensor:
    """Top-label l1 calibration error over equal-mass bins (adaptive ECE, Mukhoti et al. 2020).

    Equal-mass bins follow where the confidences are, so that, unlike equal-width bins, no bin is nearly empty
    when a model is confident; ties are handled as described in the module notes.

    Args:
        probs: class probabilities, shape (N, C), values in [0, 1].
        target: class indices, shape (N,).
        n_bins: number of bins, each holding about N / n_bins samples.

    Returns:
        Scalar tensor, lower is better.

    Example:
        >>> probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
        >>> target = torch.tensor([0, 1, 1, 1])
        >>> adaptive_calibration_error(probs, target, n_bins=2)  # bins {0.6, 0.7} and {0.8, 0.9}
        tensor(0.3500)
    """
    _calibration_error_validate(probs, target, n_bins)
    confidence, correct = _adaptive_calibration_error_update(probs, target)
    return _adaptive_calibration_error_compute(confidence, correct, n_bins)


def _classwise_calibration_error_update(probs: Tensor, target: Tensor, n_bins: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per (class, bin) count, probability sum and hit sum, each float64 of shape (C, n_bins)."""
    num_classes = probs.shape[1]
    index, _ = _uniform_bins(probs, n_bins)  # (N, C)
    flat = (index + torch.arange(num_classes, device=probs.device) * n_bins).flatten()  # (N·C,) class-major
    hits = F.one_hot(target, num_classes).double().flatten()  # (N·C,)
    zeros = torch.zeros(num_classes * n_bins, dtype=torch.float64, device=probs.device)
    count = zeros.index_add(0, flat, torch.ones_like(hits))
    prob_sum = zeros.index_add(0, flat, probs.double().flatten())
    hit_sum = zeros.index_add(0, flat, hits)
    return tuple(t.view(num_classes, n_bins) for t in (count, prob_sum, hit_sum))  # (C, n_bins) each


def _classwise_calibration_error_compute(count: Tensor, prob_sum: Tensor, hit_sum: Tensor) -> Tensor:
    """Class mean of the bin sum of ``|hits − probs| / N`` (= count-weighted ``|accuracy − confidence|``)."""
    n = count[0].sum()
    per_class = (hit_sum - prob_sum).abs().sum(dim=1) / n  # (C,)
    return per_class.mean()


def classwise_calibration_error(probs: Tensor, target: Tensor, n_bins: int = 15) -> Tensor:
    """Class-wise ECE (Kull et al. 2019): the l1 ECE of every class's probability, averaged over classes.

    For class ``k`` the probabilities ``probs[:, k]`` are put in equal-width bins and compared with the
    frequency of ``target == k`` in each bin; unlike the top-label ECE this also checks the non-top
    probabilities.

    Args:
        probs: class probabilities, shape (N, C), values in [0, 1].
        target: class indices, shape (N,).
        n_bins: number of equal-width bins on [0, 1].

    Returns:
        Scalar tensor, lower is better.

    Example:
        >>> probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
        >>> target = torch.tensor([0, 1, 1, 1])
        >>> classwise_calibration_error(probs, target, n_bins=2)
        tensor(0.3500)
    """
    _calibration_error_validate(probs, target, n_bins)
    count, prob_sum, hit_sum = _classwise_calibration_error_update(probs, target, n_bins)
    return _classwise_calibration_error_compute(count, prob_sum, hit_sum).to(_out_dtype(probs))
