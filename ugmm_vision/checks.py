"""Argument checks shared by the whole package: each raises a ``ValueError`` that names the bad argument.

Scalar checks return the value so that a constructor can check and store in one line. Tensor checks (``probs``,
``logits``, ``target``, ``scores``) are the contracts of the metric functions in :mod:`ugmm_vision.functional`,
kept here because :mod:`ugmm_vision.metrics`, :mod:`ugmm_vision.calibration` and :mod:`ugmm_vision.report` ask
the same questions.

Example:
    >>> check_positive_int("epochs", 3)
    3
    >>> check_fraction("p", 1.0)
    Traceback (most recent call last):
        ...
    ValueError: Expected `p` in [0, 1), got 1.0
"""

from __future__ import annotations

import math
from collections.abc import Collection
from numbers import Real
from typing import TypeVar

import torch
from torch import Tensor

__all__ = [
    "check_bool",
    "check_choice",
    "check_confidence_correct",
    "check_fraction",
    "check_int",
    "check_logits",
    "check_n_bins",
    "check_non_negative_int",
    "check_positive_float",
    "check_positive_int",
    "check_probability",
    "check_probs",
    "check_scores",
    "check_target",
    "is_int",
    "is_real",
]

T = TypeVar("T")


def is_int(value: object) -> bool:
    """Whether ``value`` is an ``int`` and not a ``bool`` (``True`` is an ``int`` to Python, never to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """Whether ``value`` is a real number (``int``, ``float``, numpy scalar) and not a ``bool``."""
    return isinstance(value, Real) and not isinstance(value, bool)


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a ``bool`` (not merely truthy: ``1`` and ``"yes"`` are refused).

    Example:
        >>> check_bool("compile", 1)
        Traceback (most recent call last):
            ...
        ValueError: Expected `compile` to be a bool, got 1
    """
    if not isinstance(value, bool):
        raise ValueError(f"Expected `{name}` to be a bool, got {value!r}")
    return value


def check_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` if it is an ``int`` (not a ``bool``) in ``[low, high]`` (either bound may be ``None``).

    Example:
        >>> check_int("severity", 6, low=1, high=5)
        Traceback (most recent call last):
            ...
        ValueError: Expected `severity` to be an integer in [1, 5], got 6
    """
    if not is_int(value) or (low is not None and value < low) or (high is not None and value > high):
        if low is None and high is None:
            want = "an integer"
        elif high is None:
            want = f"an integer ≥ {low}"
        elif low is None:
            want = f"an integer ≤ {high}"
        else:
            want = f"an integer in [{low}, {high}]"
        raise ValueError(f"Expected `{name}` to be {want}, got {value!r}")
    return value  # type: ignore[return-value]


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an ``int`` ≥ 1 (not a ``bool``).

    Example:
        >>> check_positive_int("n_bins", 0)
        Traceback (most recent call last):
            ...
        ValueError: Expected `n_bins` to be a positive integer, got 0
    """
    if not is_int(value) or value < 1:  # type: ignore[operator]
        raise ValueError(f"Expected `{name}` to be a positive integer, got {value!r}")
    return value  # type: ignore[return-value]


def check_non_negative_int(name: str, value: object) -> int:
    """Return ``value`` if it is an ``int`` ≥ 0 (not a ``bool``)."""
    if not is_int(value) or value < 0:  # type: ignore[operator]
        raise ValueError(f"Expected `{name}` to be a non-negative integer, got {value!r}")
    return value  # type: ignore[return-value]


def check_positive_float(name: str, value: object, *, finite: bool = True) -> float:
    """Return ``value`` as a ``float`` if it is a real number > 0 (and finite unless ``finite=False``).

    Example:
        >>> check_positive_float("lr", 0)
        Traceback (most recent call last):
            ...
        ValueError: Expected `lr` > 0 and finite, got 0
    """
    if not is_real(value) or not value > 0 or (finite and not math.isfinite(value)):  # type: ignore[operator]
        raise ValueError(f"Expected `{name}` > 0{' and finite' if finite else ''}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_fraction(name: str, value: object, *, low_open: bool = False, high_open: bool = True) -> float:
    """Return ``value`` as a ``float`` if it lies in the unit interval, by default ``[0, 1)`` (a dropout rate).

    Args:
        name: the argument's name, for the error message.
        value: the value to check; ``bool`` and NaN are refused.
        low_open: exclude 0, e.g. a validation fraction in ``(0, 1)``.
        high_open: exclude 1 (the default: a dropout probability of 1 drops everything).

    Returns:
        ``value`` as a ``float``.
    """
    ok = is_real(value) and (0 < value if low_open else 0 <= value) and (value < 1 if high_open else value <= 1)  # type: ignore[operator]
    if not ok:
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ValueError(f"Expected `{name}` in {interval}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_probability(name: str, value: object) -> float:
    """Return ``value`` as a ``float`` if it is a probability in ``[0, 1]``."""
    return check_fraction(name, value, high_open=False)


def check_choice(name: str, value: T, choices: Collection[object]) -> T:
    """Return ``value`` if it is one of ``choices``.

    Example:
        >>> check_choice("norm", "l3", ("l1", "l2", "max"))
        Traceback (most recent call last):
            ...
        ValueError: Expected `norm` to be one of 'l1', 'l2', 'max', got 'l3'
    """
    if value not in choices:
        raise ValueError(f"Expected `{name}` to be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


# --- tensor contracts of the metric functions -----------------------------------------------------------------


def _shape(x: object) -> str:
    return f"shape {tuple(x.shape)} and dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__


def check_n_bins(n_bins: int) -> None:
    """Raise unless ``n_bins`` is a positive integer."""
    check_positive_int("n_bins", n_bins)


def check_probs(probs: Tensor) -> None:
    """Raise unless ``probs`` is a non-empty floating (N, C) tensor of probability rows: values in [0, 1], each row
    summing to 1 (within ``max(1e-3, C·eps)``, float rounding of a softmax)."""
    if not isinstance(probs, Tensor) or probs.dim() != 2 or not probs.is_floating_point() or probs.numel() == 0:
        raise ValueError(f"Expected `probs` of shape (N, C) with N, C >= 1, floating dtype, got {_shape(probs)}")
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
        raise ValueError(f"Expected `{name}` of shape (N, C) with a floating dtype, got {_shape(logits)}")
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
        raise ValueError(f"Expected `target` of shape ({num_rows},) with an integer dtype, got {_shape(target)}")
    if target.shape[0] != num_rows:
        raise ValueError(f"Expected `target` of shape ({num_rows},) (one label per row), got {tuple(target.shape)}")
    if num_rows and not bool(((target >= 0) & (target < num_classes)).all()):
        lo, hi = target.min().item(), target.max().item()
        raise ValueError(f"Expected `target` with class indices in [0, {num_classes - 1}], got [{lo}, {hi}]")


def check_scores(scores: Tensor, name: str, allow_empty: bool = False) -> None:
    """Raise unless ``scores`` is a floating 1-D tensor without NaN (and non-empty unless allowed)."""
    if not isinstance(scores, Tensor) or scores.dim() != 1 or not scores.is_floating_point():
        raise ValueError(f"Expected `{name}` of shape (N,) with a floating dtype, got {_shape(scores)}")
    if not allow_empty and scores.numel() == 0:
        raise ValueError(f"Expected `{name}` with at least one element, got an empty tensor")
    if bool(torch.isnan(scores).any()):
        raise ValueError(f"Expected `{name}` without NaN values, got {int(torch.isnan(scores).sum())} NaNs")


def check_confidence_correct(confidence: Tensor, correct: Tensor, allow_empty: bool = False) -> None:
    """Raise unless ``confidence`` (N,) float and ``correct`` (N,) bool or 0/1 match."""
    check_scores(confidence, "confidence", allow_empty=allow_empty)
    if not isinstance(correct, Tensor) or correct.dim() != 1:
        raise ValueError(f"Expected `correct` of shape (N,) with bool or 0/1 values, got {_shape(correct)}")
    if correct.shape != confidence.shape:
        raise ValueError(
            f"Expected `correct` of shape {tuple(confidence.shape)} like `confidence`, got {tuple(correct.shape)}"
        )
    if correct.dtype != torch.bool and not bool(((correct == 0) | (correct == 1)).all()):
        raise ValueError("Expected `correct` with bool or 0/1 values, got other values")
