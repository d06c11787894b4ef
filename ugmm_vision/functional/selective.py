"""Selective prediction: risk–coverage curve, AURC, AUGRC and operating points.

A selective classifier accepts a sample when its ``confidence`` is at least a threshold and abstains
otherwise. *Coverage* is the fraction accepted; *selective risk* the error rate among the accepted;
*generalised risk* (Traub et al. 2024) the fraction of all samples that are accepted and wrong.

Ties in ``confidence`` are handled deterministically, independent of the order of the samples:

* Operating points (:func:`risk_coverage_curve`, :func:`risk_at_coverage`, :func:`coverage_at_risk`) come from
  thresholds, so samples with equal confidence are accepted or rejected together: the curve has one point per
  distinct confidence value.
* The areas (:func:`aurc`, :func:`augrc`) average over every coverage ``k / N``, ``k = 1..N``. Inside a group
  of tied samples the errors are spread evenly (the expected error count when the tied samples are accepted in
  random order), so each area is its expectation over all tie-breaks. AURC is the mean selective risk over the
  N coverage levels (Geifman et al. 2019); AUGRC is the trapezoidal area under the generalised risk from
  coverage 0 (risk 0) to 1, which equals ``(1 − AUROC_f)·acc·(1 − acc) + ½·(1 − acc)²`` with ``AUROC_f`` the
  failure-detection AUROC (ties counted ½).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ugmm_vision.checks import check_confidence_correct, check_fraction, check_probability
from ugmm_vision.functional._validation import smallest_count_reaching

__all__ = [
    "RiskCoverageCurve",
    "augrc",
    "aurc",
    "coverage_at_risk",
    "risk_at_coverage",
    "risk_coverage_curve",
]


class RiskCoverageCurve(NamedTuple):
    """Operating points of a selective classifier, one per distinct confidence value.

    Attributes:
        coverage: fraction of samples with ``confidence >= threshold``, shape (K,), increasing, ends at 1.
        risk: error rate among those samples (selective risk), shape (K,).
        threshold: the distinct confidence values, shape (K,), decreasing.
    """

    coverage: Tensor
    risk: Tensor
    threshold: Tensor


def _selective_validate(confidence: Tensor, correct: Tensor) -> None:
    check_confidence_correct(confidence, correct)


def _selective_update(confidence: Tensor, correct: Tensor) -> tuple[Tensor, Tensor]:
    """Flattened confidence and correctness as bool; the areas need the whole set (``cat`` states)."""
    return confidence, correct.bool()


def _tie_groups(confidence: Tensor, correct: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Distinct confidences (G,) in decreasing order with their sample and error counts (G,), float64."""
    values, inverse, counts = torch.unique(confidence, sorted=True, return_inverse=True, return_counts=True)
    errors = torch.zeros(values.numel(), dtype=torch.float64, device=confidence.device)
    errors = errors.index_add(0, inverse, (~correct.bool()).double())  # (G,)
    return values.flip(0), counts.flip(0).double(), errors.flip(0)


def _expected_errors(counts: Tensor, errors: Tensor) -> Tensor:
    """Expected number of errors among the k most confident samples, k = 1..N, ties spread evenly; (N,)."""
    ends = counts.cumsum(0)  # (G,)
    starts = ends - counts
    errors_before = errors.cumsum(0) - errors
    group = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts.long())  # (N,)
    k = torch.arange(1, group.numel() + 1, dtype=torch.float64, device=counts.device)  # (N,)
    return errors_before[group] + (k - starts[group]) * errors[group] / counts[group]


def _curve_points(confidence: Tensor, correct: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Accepted count, selective risk (float64) and threshold at each distinct confidence, each (G,)."""
    values, counts, errors = _tie_groups(confidence, correct)
    accepted = counts.cumsum(0)  # (G,)
    return accepted, errors.cumsum(0) / accepted, values


def _aurc_compute(confidence: Tensor, correct: Tensor) -> Tensor:
    _, counts, errors = _tie_groups(confidence, correct)
    expected = _expected_errors(counts, errors)  # (N,)
    k = torch.arange(1, expected.numel() + 1, dtype=torch.float64, device=expected.device)
    return (expected / k).mean().to(torch.promote_types(confidence.dtype, torch.float32))


def _augrc_compute(confidence: Tensor, correct: Tensor) -> Tensor:
    _, counts, errors = _tie_groups(confidence, correct)
    expected = _expected_errors(counts, errors)  # (N,)
    n = expected.numel()
    previous = torch.cat([expected.new_zeros(1), expected[:-1]])  # (N,) errors at k − 1, zero at coverage 0
    return ((previous + expected).sum() / (2 * n * n)).to(torch.promote_types(confidence.dtype, torch.float32))


def aurc(confidence: Tensor, correct: Tensor) -> Tensor:
    """Area under the risk–coverage curve: the selective risk averaged over coverages 1/N, 2/N, …, 1.

    Ties are averaged over, see the module notes.

    Args:
        confidence: confidence score per sample, shape (N,), higher = more likely accepted.
        correct: whether each prediction is right, shape (N,), bool or 0/1.

    Returns:
        Scalar tensor in [0, 1], lower is better.

    Example:
        >>> confidence = torch.tensor([0.9, 0.8, 0.7, 0.6])
        >>> correct = torch.tensor([True, False, True, False])
        >>> aurc(confidence, correct)  # mean of risks 0/1, 1/2, 1/3, 2/4
        tensor(0.3333)
    """
    _selective_validate(confidence, correct)
    return _aurc_compute(*_selective_update(confidence, correct))


def augrc(confidence: Tensor, correct: Tensor) -> Tensor:
    """Area under the generalised risk–coverage curve (AUGRC, Traub et al. 2024).

    The generalised risk at a coverage is the fraction of *all* samples that are accepted and wrong; unlike
    AURC it does not over-weight the few most confident samples. Ties are averaged over, see the module notes.

    Args:
        confidence: confidence score per sample, shape (N,), higher = more likely accepted.
        correct: whether each prediction is right, shape (N,), bool or 0/1.

    Returns:
        Scalar tensor in [0, 0.5], lower is better.

    Example:
        >>> confidence = torch.tensor([0.9, 0.8, 0.7, 0.6])
        >>> correct = torch.tensor([True, False, True, False])
        >>> augrc(confidence, correct)  # trapezoids under 0, 1/4, 1/4, 2/4 from (0, 0)
        tensor(0.1875)
    """
    _selective_validate(confidence, correct)
    return _augrc_compute(*_selective_update(confidence, correct))


def risk_coverage_curve(confidence: Tensor, correct: Tensor) -> RiskCoverageCurve:
    """Coverage and selective risk at every distinct confidence threshold.

    Args:
        confidence: confidence score per sample, shape (N,), higher = more likely accepted.
        correct: whether each prediction is right, shape (N,), bool or 0/1.

    Returns:
        A :class:`RiskCoverageCurve` with increasing coverage; tied samples enter together.

    Example:
        >>> curve = risk_coverage_curve(torch.tensor([0.9, 0.8, 0.8, 0.6]), torch.tensor([1, 0, 1, 0]))
        >>> curve.coverage, curve.risk
        (tensor([0.2500, 0.7500, 1.0000]), tensor([0.0000, 0.3333, 0.5000]))
        >>> curve.threshold
        tensor([0.9000, 0.8000, 0.6000])
    """
    _selective_validate(confidence, correct)
    accepted, risk, values = _curve_points(*_selective_update(confidence, correct))
    dtype = torch.promote_types(confidence.dtype, torch.float32)
    return RiskCoverageCurve(coverage=(accepted / accepted[-1]).to(dtype), risk=risk.to(dtype), threshold=values)


def risk_at_coverage(confidence: Tensor, correct: Tensor, coverage: float) -> Tensor:
    """Selective risk at the smallest achievable coverage that is at least ``coverage``.

    Args:
        confidence: confidence score per sample, shape (N,), higher = more likely accepted.
        correct: whether each prediction is right, shape (N,), bool or 0/1.
        coverage: wanted fraction of accepted samples, in (0, 1].

    Returns:
        Scalar tensor, the error rate among the accepted samples.

    Example:
        >>> confidence = torch.tensor([0.9, 0.8, 0.8, 0.6])
        >>> risk_at_coverage(confidence, torch.tensor([1, 0, 1, 0]), coverage=0.5)  # ties: 3 of 4 accepted
        tensor(0.3333)
    """
    check_fraction("coverage", coverage, low_open=True, high_open=False)
    _selective_validate(confidence, correct)
    accepted, risk, _ = _curve_points(*_selective_update(confidence, correct))
    needed = smallest_count_reaching(coverage, confidence.numel())
    index = torch.searchsorted(accepted, accepted.new_tensor([needed]))  # first point accepting >= needed
    return risk[index[0]].to(torch.promote_types(confidence.dtype, torch.float32))


def coverage_at_risk(confidence: Tensor, correct: Tensor, risk: float) -> Tensor:
    """Largest achievable coverage whose selective risk is at most ``risk`` (0 when there is none).

    Args:
        confidence: confidence score per sample, shape (N,), higher = more likely accepted.
        correct: whether each prediction is right, shape (N,), bool or 0/1.
        risk: largest acceptable error rate among the accepted samples, in [0, 1].

    Returns:
        Scalar tensor in [0, 1].

    Example:
        >>> confidence = torch.tensor([0.9, 0.8, 0.7, 0.6])
        >>> coverage_at_risk(confidence, torch.tensor([1, 0, 1, 0]), risk=0.4)  # 3 accepted, 1 wrong
        tensor(0.7500)
    """
    check_probability("risk", risk)
    _selective_validate(confidence, correct)
    accepted, selective_risk, _ = _curve_points(*_selective_update(confidence, correct))
    coverage = torch.where(selective_risk <= risk, accepted / accepted[-1], torch.zeros_like(accepted))  # (G,)
    return coverage.max().to(torch.promote_types(confidence.dtype, torch.float32))
