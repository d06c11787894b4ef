"""Sampled predictives: the mean of several predictive distributions and the uncertainty scores they give.

MC dropout (:mod:`ugmm_vision.methods.mc_dropout`) and deep ensembles (:mod:`ugmm_vision.methods.ensemble`)
both produce ``S`` predictive distributions per image — samples of the network, or members. The prediction is
their mean; the spread between them gives two OOD scores beside the softmax ones (docs/methods.md):

* mutual information ``I[y; θ] = H[mean_s p_s] − mean_s H[p_s]`` (the "epistemic" part of the predictive
  entropy; 0 when all samples agree);
* disagreement: the fraction of samples whose top class differs from the mean prediction's top class.

Both are returned negated (``neg_…``) so that, like every score in :mod:`ugmm_vision.functional.scores`,
higher = more in-distribution.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["member_disagreement", "mutual_information", "predictive_log_probs", "sample_scores"]


def _check_log_probs(log_probs: Tensor) -> None:
    if not isinstance(log_probs, Tensor) or log_probs.ndim != 3 or log_probs.shape[0] < 1:
        shape = tuple(log_probs.shape) if isinstance(log_probs, Tensor) else type(log_probs).__name__
        raise ValueError(f"Expected `log_probs` of shape (S, B, C) with S ≥ 1, got {shape}")


def predictive_log_probs(log_probs: Tensor) -> Tensor:
    """Log of the mean predictive ``log (1/S) Σ_s p_s``, computed stably from per-sample log-probabilities.

    Args:
        log_probs: log-softmax outputs of S samples or members, shape (S, B, C).

    Returns:
        Log-probabilities (B, C); their softmax is the mean predictive, so they serve as logits in reports.

    Example:
        >>> lp = torch.tensor([[[0.9, 0.1]], [[0.5, 0.5]]]).log()
        >>> predictive_log_probs(lp).exp()
        tensor([[0.7000, 0.3000]])
    """
    _check_log_probs(log_probs)
    return torch.logsumexp(log_probs, dim=0) - math.log(log_probs.shape[0])  # (B, C)


def _entropy(log_p: Tensor) -> Tensor:
    p = log_p.exp()
    return -torch.where(p > 0, p * log_p, torch.zeros_like(p)).sum(dim=-1)


def mutual_information(log_probs: Tensor) -> Tensor:
    """Mutual information between the label and the sample, ``H[mean p] − mean H[p]`` (nats, ≥ 0), in float64.

    Args:
        log_probs: per-sample log-probabilities, shape (S, B, C).

    Returns:
        Mutual information (B,); 0 when every sample predicts the same distribution.

    Example:
        >>> lp = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]]).clamp_min(1e-30).log()
        >>> round(float(mutual_information(lp)), 4)  # two confident, opposite members: log 2
        0.6931
    """
    _check_log_probs(log_probs)
    log_probs = log_probs.double()
    total = _entropy(predictive_log_probs(log_probs))  # (B,)
    expected = _entropy(log_probs).mean(dim=0)  # (B,)
    return (total - expected).clamp_min(0.0)  # rounding can make identical samples give −1e-17


def member_disagreement(log_probs: Tensor) -> Tensor:
    """Fraction of samples whose top class differs from the mean predictive's top class, in [0, 1).

    Args:
        log_probs: per-sample log-probabilities, shape (S, B, C).

    Returns:
        Disagreement (B,).

    Example:
        >>> lp = torch.tensor([[[0.9, 0.1]], [[0.8, 0.2]], [[0.2, 0.8]]]).log()
        >>> member_disagreement(lp)
        tensor([0.3333])
    """
    _check_log_probs(log_probs)
    top = predictive_log_probs(log_probs).argmax(dim=-1)  # (B,)
    return (log_probs.argmax(dim=-1) != top).to(log_probs.dtype).mean(dim=0)  # (S, B) → (B,)


def sample_scores(log_probs: Tensor) -> dict[str, Tensor]:
    """The mean predictive (as ``logits``) and the sample-spread OOD scores, higher = more in-distribution.

    Example:
        >>> out = sample_scores(torch.randn(3, 4, 5).log_softmax(-1))
        >>> sorted(out), out["logits"].shape
        (['logits', 'neg_disagreement', 'neg_mutual_information'], torch.Size([4, 5]))
    """
    return {
        "logits": predictive_log_probs(log_probs),
        "neg_mutual_information": -mutual_information(log_probs).to(log_probs.dtype),
        "neg_disagreement": -member_disagreement(log_probs),
    }
