"""Proper scoring rules: the multi-class Brier score and the negative log-likelihood.

Both are means of a per-sample loss, so their update step returns a (sum, count) pair that adds up across
batches and processes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ugmm_vision.checks import check_logits, check_probs, check_target

__all__ = ["brier_score", "negative_log_likelihood"]


def _brier_score_validate(probs: Tensor, target: Tensor) -> None:
    check_probs(probs)
    check_target(target, probs.shape[0], probs.shape[1])


def _brier_score_update(probs: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Sum over samples of the squared error to the one-hot target (float64) and the number of samples."""
    one_hot = F.one_hot(target, probs.shape[1]).to(torch.float64)  # (N, C)
    total = (probs.double() - one_hot).square().sum()
    return total, torch.tensor(target.numel(), dtype=torch.float64, device=probs.device)


def _mean_compute(total: Tensor, count: Tensor) -> Tensor:
    return total / count


def brier_score(probs: Tensor, target: Tensor) -> Tensor:
    """Multi-class Brier score: squared error to the one-hot target, summed over classes, mean over samples.

    Ranges from 0 (perfect) to 2. For two classes it is twice scikit-learn's binary ``brier_score_loss``,
    which looks at the positive class only.

    Args:
        probs: class probabilities, shape (N, C), values in [0, 1].
        target: class indices, shape (N,).

    Returns:
        Scalar tensor, lower is better.

    Example:
        >>> probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
        >>> brier_score(probs, torch.tensor([0, 1, 1]))
        tensor(0.4933)
    """
    _brier_score_validate(probs, target)
    total, count = _brier_score_update(probs, target)
    return _mean_compute(total, count).to(torch.promote_types(probs.dtype, torch.float32))


def _negative_log_likelihood_validate(logits: Tensor, target: Tensor) -> None:
    check_logits(logits, allow_empty=False)  # the mean of no samples is not a score
    check_target(target, logits.shape[0], logits.shape[1])


def _negative_log_likelihood_update(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Summed cross-entropy (float64) and the number of samples."""
    total = F.cross_entropy(logits.double(), target, reduction="sum")
    return total, torch.tensor(target.numel(), dtype=torch.float64, device=logits.device)


def negative_log_likelihood(logits: Tensor, target: Tensor) -> Tensor:
    """Mean negative log-likelihood of the targets under ``softmax(logits)`` (the cross-entropy).

    Works from logits (log-softmax is exact where softmax probabilities round to 0). For a uGMM head, whose
    logits are class log-densities, this is the NLL of the class posterior under a uniform class prior.

    Args:
        logits: unnormalised class scores, shape (N, C).
        target: class indices, shape (N,).

    Returns:
        Scalar tensor, lower is better.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
        >>> negative_log_likelihood(logits, torch.tensor([0, 1]))
        tensor(0.4100)
    """
    _negative_log_likelihood_validate(logits, target)
    total, count = _negative_log_likelihood_update(logits, target)
    return _mean_compute(total, count).to(torch.promote_types(logits.dtype, torch.float32))
