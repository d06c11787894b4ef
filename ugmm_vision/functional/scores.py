"""Per-sample confidence / in-distribution scores from a classifier's logits, shape (B, C) → (B,).

Every score is oriented the same way: higher = more confident / more in-distribution, so any of them can be
fed to the selective-prediction and OOD metrics. For uGMM heads the logits are class log-densities
``log p(x | c)`` (docs/maths.md §1), which gives density scores that ordinary heads do not have:
:func:`density_max`, :func:`density_logsumexp` (``log Σ_c p(x | c)``, the log marginal density up to the
constant ``log C`` under a uniform class prior) and :func:`hidden_density_sum` over the hidden uGMM layers. On
a uGMM head ``density_max`` and ``density_logsumexp`` compute the same numbers as ``max_logit`` and ``energy``
(temperature 1); they are named apart because they mean a density only there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor

from ugmm_vision.checks import check_logits, check_positive_float

__all__ = [
    "SCORES",
    "compute_scores",
    "density_logsumexp",
    "density_max",
    "energy_score",
    "hidden_density_sum",
    "max_logit",
    "max_softmax_probability",
    "negative_entropy",
]


def max_softmax_probability(logits: Tensor) -> Tensor:
    """Largest softmax probability (MSP, Hendrycks & Gimpel 2017).

    Args:
        logits: class scores, shape (B, C).

    Returns:
        Scores of shape (B,) in [1/C, 1].

    Example:
        >>> max_softmax_probability(torch.tensor([[2.0, 0.0], [0.0, 0.0]]))
        tensor([0.8808, 0.5000])
    """
    check_logits(logits)
    return torch.softmax(logits, dim=-1).amax(dim=-1)


def negative_entropy(logits: Tensor) -> Tensor:
    """Negative Shannon entropy (nats) of the softmax distribution; 0 for a one-hot prediction.

    Classes with zero probability (``-inf`` logits or underflow) contribute 0, never NaN.

    Args:
        logits: class scores, shape (B, C).

    Returns:
        Scores of shape (B,) in [−log C, 0].

    Example:
        >>> negative_entropy(torch.tensor([[0.0, 0.0], [0.0, float("-inf")]]))
        tensor([-0.6931,  0.0000])
    """
    check_logits(logits)
    log_p = torch.log_softmax(logits, dim=-1)  # (B, C)
    p = log_p.exp()
    return torch.where(p > 0, p * log_p, torch.zeros_like(p)).sum(dim=-1)


def energy_score(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Negative free energy ``T · logsumexp(logits / T)`` (Liu et al. 2020).

    Args:
        logits: class scores, shape (B, C).
        temperature: softmax temperature ``T > 0``.

    Returns:
        Scores of shape (B,).

    Example:
        >>> energy_score(torch.tensor([[0.0, 0.0], [4.0, 0.0]]))
        tensor([0.6931, 4.0181])
    """
    check_positive_float("temperature", temperature, finite=False)
    check_logits(logits)
    return temperature * torch.logsumexp(logits / temperature, dim=-1)  # (B,)


def max_logit(logits: Tensor) -> Tensor:
    """Largest logit (MaxLogit, Hendrycks et al. 2022).

    Args:
        logits: class scores, shape (B, C).

    Returns:
        Scores of shape (B,).

    Example:
        >>> max_logit(torch.tensor([[2.0, 0.0], [-1.0, -3.0]]))
        tensor([ 2., -1.])
    """
    check_logits(logits)
    return logits.amax(dim=-1)


def density_max(logits: Tensor) -> Tensor:
    """Largest class log-density ``max_c log p(x | c)`` of a uGMM head.

    Args:
        logits: class log-densities from a uGMM head, shape (B, C).

    Returns:
        Scores of shape (B,).

    Example:
        >>> density_max(torch.tensor([[-2.0, -5.0], [-9.0, -7.0]]))
        tensor([-2., -7.])
    """
    check_logits(logits)
    return logits.amax(dim=-1)


def density_logsumexp(logits: Tensor) -> Tensor:
    """Log of the summed class densities ``log Σ_c p(x | c)`` of a uGMM head.

    Args:
        logits: class log-densities from a uGMM head, shape (B, C).

    Returns:
        Scores of shape (B,).

    Example:
        >>> density_logsumexp(torch.tensor([[-2.0, -2.0]]))
        tensor([-1.3069])
    """
    check_logits(logits)
    return torch.logsumexp(logits, dim=-1)  # (B,)


def hidden_density_sum(hidden_outputs: Sequence[Tensor]) -> Tensor:
    """Sum of the log-densities of every hidden uGMM neuron, over all given layers.

    Each hidden neuron is a density over its inputs; their summed log-density is low where the features fall
    far from what the hidden layers have modelled.

    Args:
        hidden_outputs: hidden-layer outputs, each of shape (B, O_l), log-densities.

    Returns:
        Scores of shape (B,).

    Example:
        >>> hidden_density_sum([torch.tensor([[-1.0, -2.0], [-3.0, -4.0]]), torch.tensor([[-0.5], [-1.5]])])
        tensor([-3.5000, -8.5000])
    """
    if isinstance(hidden_outputs, Tensor) or len(hidden_outputs) == 0:
        raise ValueError("Expected `hidden_outputs` to be a non-empty list of (B, O) tensors")
    batch = hidden_outputs[0].shape[0] if isinstance(hidden_outputs[0], Tensor) else None
    for i, h in enumerate(hidden_outputs):
        if not isinstance(h, Tensor) or h.dim() != 2 or not h.is_floating_point() or h.shape[0] != batch:
            got = f"shape {tuple(h.shape)}, dtype {h.dtype}" if isinstance(h, Tensor) else type(h).__name__
            raise ValueError(f"Expected `hidden_outputs[{i}]` of shape ({batch}, O) with a floating dtype, got {got}")
    return torch.stack([h.sum(dim=-1) for h in hidden_outputs]).sum(dim=0)  # (L, B) -> (B,)


SCORES: dict[str, Callable[[Tensor], Tensor]] = {
    "msp": max_softmax_probability,
    "neg_entropy": negative_entropy,
    "energy": energy_score,
    "max_logit": max_logit,
    "density_max": density_max,
    "density_logsumexp": density_logsumexp,
}
"""Logit-based scores by short name: logits (B, C) → scores (B,), higher = more confident."""


def compute_scores(logits: Tensor, names: Iterable[str] | None = None) -> dict[str, Tensor]:
    """Compute several registered scores from the same logits.

    Args:
        logits: class scores, shape (B, C).
        names: keys of :data:`SCORES` to compute; all of them when ``None``.

    Returns:
        A dict from name to scores of shape (B,), in the order of ``names``.

    Example:
        >>> scores = compute_scores(torch.tensor([[2.0, 0.0]]), names=["msp", "max_logit"])
        >>> {name: round(value.item(), 4) for name, value in scores.items()}
        {'msp': 0.8808, 'max_logit': 2.0}
    """
    names = list(SCORES) if names is None else [names] if isinstance(names, str) else list(names)
    unknown = [name for name in names if name not in SCORES]
    if unknown:
        raise ValueError(f"Expected `names` from {sorted(SCORES)}, got unknown {unknown}")
    check_logits(logits)
    return {name: SCORES[name](logits) for name in names}
