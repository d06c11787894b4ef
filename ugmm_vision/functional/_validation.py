"""Shared argument checks for the metric functions: each raises a ``ValueError`` naming the bad argument."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _shape(x: Tensor) -> str:
    return f"shape {tuple(x.shape)} and dtype {x.dtype}"


def check_n_bins(n_bins: int) -> None:
    """Raise unless ``n_bins`` is a positive integer."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"Expected `n_bins` to be a positive integer, got {n_bins!r}")


def check_probs(probs: Tensor) -> None:
    """Raise unless ``probs`` is a non-empty floating (N, C) tensor of probability rows: values in [0, 1], each row
    summing to 1 (within ``max(1e-3, C·eps)``, float rounding of a softmax)."""
    if not isinstance(probs, Tensor) or probs.dim() != 2 or not probs.is_floating_point() or probs.numel() == 0:
        got = _shape(probs) if isinstance(probs, Tensor) else type(probs).__name__
        raise ValueError(f"Expected `probs` of shape (N, C) with N, C >= 1, floating dtype, got {got}")
    if not bool(((probs >= 0) & (probs <= 1)).all()):
        lo, hi = probs.min().item(), probs.max().item()
        raise ValueError(
            f"Expected `probs` of shape (N, C) with values in [0, 1], got values in [{lo}, {hi}] "
            "(pass softmax probabilities, not logits)"
        )
    sums = probs.double().sum(dim=1)  # (N,)
    tolerance = max(1e-3, probs.shape[1] * torch.finfo(probs.dtype).eps)
    off = (sums - 1).abs() > tolerance
    if bool(off.any()):
        row = int(off.nonzero()[0, 0])
        raise ValueError(
            f"Expected `probs` rows that sum to 1 (a distribution over the C classes), got {int(off.sum())} of "
            f"{probs.shape[0]} rows that do not, e.g. row {row} sums to {sums[row].item():.4g} "
            "(pass softmax probabilities over all classes)"
        )


def check_logits(logits: Tensor, name: str = "logits", allow_empty: bool = True) -> None:
    """Raise unless ``logits`` is a floating (N, C) tensor without NaN or +inf, each row with a value above −inf.

    −inf entries are allowed (a class of probability 0) as long as a row keeps one that is not: a +inf logit or a
    row of only −inf has no softmax (NaN), so the confidence, entropy and likelihood would be undefined.
    """
    if not isinstance(logits, Tensor) or logits.dim() != 2 or not logits.is_floating_point():
        got = _shape(logits) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"Expected `{name}` of shape (N, C) with a floating dtype, got {got}")
    if logits.shape[1] < 1:
        raise ValueError(f"Expected `{name}` with at least one class (C >= 1), got shape {tuple(logits.shape)}")
    if not allow_empty and logits.shape[0] == 0:
        raise ValueError(f"Expected `{name}` with at least one row (N >= 1), got shape {tuple(logits.shape)}")
    if bool(torch.isnan(logits).any()):
        raise ValueError(f"Expected `{name}` without NaN values, got {int(torch.isnan(logits).sum())} NaNs")
    if bool(torch.isposinf(logits).any()):
        raise ValueError(
            f"Expected `{name}` without +inf values (the softmax of a row holding +inf is undefined), got "
            f"{int(torch.isposinf(logits).any(dim=1).sum())} row(s) with +inf"
        )
    if logits.shape[1] and bool(torch.isneginf(logits).all(dim=1).any()):
        rows = torch.isneginf(logits).all(dim=1)
        raise ValueError(
            f"Expected every row of `{name}` to have a value above -inf, got {int(rows.sum())} row(s) of only -inf, "
            f"e.g. row {int(rows.nonzero()[0, 0])} (no class has any probability: the softmax is undefined)"
        )


def check_target(target: Tensor, num_rows: int, num_classes: int) -> None:
    """Raise unless ``target`` is an integer (N,) tensor of class indices in [0, num_classes)."""
    if (
        not isinstance(target, Tensor)
        or target.dim() != 1
        or target.is_floating_point()
        or target.is_complex()
        or target.dtype == torch.bool
    ):
        got = _shape(target) if isinstance(target, Tensor) else type(target).__name__
        raise ValueError(f"Expected `target` of shape ({num_rows},) with an integer dtype, got {got}")
    if target.shape[0] != num_rows:
        raise ValueError(f"Expected `target` of shape ({num_rows},) (one label per row), got {tuple(target.shape)}")
    if num_rows and not bool(((target >= 0) & (target < num_classes)).all()):
        lo, hi = target.min().item(), target.max().item()
        raise ValueError(f"Expected `target` with class indices in [0, {num_classes - 1}], got [{lo}, {hi}]")


def check_scores(scores: Tensor, name: str, allow_empty: bool = False) -> None:
    """Raise unless ``scores`` is a floating 1-D tensor without NaN (and non-empty unless allowed)."""
    if not isinstance(scores, Tensor) or scores.dim() != 1 or not scores.is_floating_point():
        got = _shape(scores) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"Expected `{name}` of shape (N,) with a floating dtype, got {got}")
    if not allow_empty and scores.numel() == 0:
        raise ValueError(f"Expected `{name}` with at least one element, got an empty tensor")
    if bool(torch.isnan(scores).any()):
        raise ValueError(f"Expected `{name}` without NaN values, got {int(torch.isnan(scores).sum())} NaNs")


def check_confidence_correct(confidence: Tensor, correct: Tensor, allow_empty: bool = False) -> None:
    """Raise unless ``confidence`` (N,) float and ``correct`` (N,) bool or 0/1 match."""
    check_scores(confidence, "confidence", allow_empty=allow_empty)
    if not isinstance(correct, Tensor) or correct.dim() != 1:
        got = _shape(correct) if isinstance(correct, Tensor) else type(correct).__name__
        raise ValueError(f"Expected `correct` of shape (N,) with bool or 0/1 values, got {got}")
    if correct.shape != confidence.shape:
        raise ValueError(
            f"Expected `correct` of shape {tuple(confidence.shape)} like `confidence`, got {tuple(correct.shape)}"
        )
    if correct.dtype != torch.bool and not bool(((correct == 0) | (correct == 1)).all()):
        raise ValueError("Expected `correct` with bool or 0/1 values, got other values")


def smallest_count_reaching(fraction: float, n: int) -> int:
    """Smallest ``k`` in [1, n] with ``k / n >= fraction`` as floats compare it (``ceil`` may round)."""
    k = max(1, math.ceil(fraction * n))
    while k > 1 and (k - 1) / n >= fraction:
        k -= 1
    while k < n and k / n < fraction:
        k += 1
    return k
