"""Old home of the metric argument checks, now in :mod:`ugmm_vision.checks`; re-exported here for one release."""

from __future__ import annotations

import math

from ugmm_vision.checks import (
    check_confidence_correct,
    check_logits,
    check_n_bins,
    check_probs,
    check_scores,
    check_target,
)

__all__ = [
    "check_confidence_correct",
    "check_logits",
    "check_n_bins",
    "check_probs",
    "check_scores",
    "check_target",
    "smallest_count_reaching",
]


def smallest_count_reaching(fraction: float, n: int) -> int:
    """Smallest ``k`` in [1, n] with ``k / n >= fraction`` as floats compare it (``ceil`` may round)."""
    k = max(1, math.ceil(fraction * n))
    while k > 1 and (k - 1) / n >= fraction:
        k -= 1
    while k < n and k / n < fraction:
        k += 1
    return k
