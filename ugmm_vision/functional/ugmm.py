"""The uGMM neuron's log-density (DESIGN.md §2) as plain functions.

Every output neuron ``j`` is a mixture with one univariate Gaussian component per input ``k``::

    y[b, j] = logsumexp_k ( log π[j,k] − log σ[j,k] − ½·log(2π) − (x[b,k] − μ[j,k])² / (2σ[j,k]²) )

This file holds the reference (materialising) formula and the mixing-dropout mask; the fused kernels live in
``ugmm_vision.ops`` and are checked against :func:`ugmm_log_prob_reference`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ugmm_vision.ops.dispatch import UGMMBackend, fused_ugmm_log_prob, resolve_backend

__all__ = ["mixing_dropout", "ugmm_log_prob", "ugmm_log_prob_reference", "validate_ugmm_args"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def validate_ugmm_args(
    x: Tensor, mu: Tensor, log_sigma: Tensor, mix_logits: Tensor, mask: Tensor | None = None
) -> None:
    """Check the shapes of a uGMM call and raise a ``ValueError`` naming the argument that is wrong."""
    if x.dim() != 2:
        raise ValueError(f"Expected `x` of shape (B, I), got shape {tuple(x.shape)}")
    if log_sigma.dim() != 2:
        raise ValueError(f"Expected `log_sigma` of shape (O, I), got shape {tuple(log_sigma.shape)}")
    out_features, in_features = log_sigma.shape
    if x.shape[1] != in_features:
        raise ValueError(f"Expected `x` with {in_features} features (the layer's in_features), got {x.shape[1]}")
    if mix_logits.shape != log_sigma.shape:
        raise ValueError(
            f"Expected `mix_logits` of shape {tuple(log_sigma.shape)} like `log_sigma`, got {tuple(mix_logits.shape)}"
        )
    if mu.shape not in ((out_features, in_features), (in_features,)):
        raise ValueError(
            f"Expected `mu` of shape ({out_features}, {in_features}) or ({in_features},) for tied means, "
            f"got {tuple(mu.shape)}"
        )
    if mask is not None:
        if mask.dtype != torch.bool:
            raise ValueError(f"Expected `mask` of dtype torch.bool (True = missing), got {mask.dtype}")
        if mask.shape != x.shape:
            raise ValueError(f"Expected `mask` of shape {tuple(x.shape)} like `x`, got {tuple(mask.shape)}")


def ugmm_log_prob_reference(
    x: Tensor, mu: Tensor, log_sigma: Tensor, mix_logits: Tensor, mask: Tensor | None = None
) -> Tensor:
    """Naive uGMM log-density: materialises (B, O, I) tensors, the paper's formulation.

    Kept as the readable definition and as the oracle for the fused kernels. Half-precision inputs are
    computed in float32 and the result cast back.
    """
    in_dtype = x.dtype
    compute_dtype = torch.promote_types(in_dtype, torch.float32)
    x, mu, log_sigma, mix_logits = (t.to(compute_dtype) for t in (x, mu, log_sigma, mix_logits))
    log_pi = torch.log_softmax(mix_logits, dim=-1)  # (O, I)
    z = (x.unsqueeze(1) - mu) * torch.exp(-log_sigma)  # (B, O, I)
    log_components = log_pi - log_sigma - _HALF_LOG_2PI - 0.5 * z.square()  # (B, O, I)
    if mask is not None:
        # A missing input's Gaussian integrates to one: its component keeps only log π.
        log_components = torch.where(mask.unsqueeze(1), log_pi, log_components)  # (B, O, I)
    return torch.logsumexp(log_components, dim=-1).to(in_dtype)  # (B, O)


def ugmm_log_prob(
    x: Tensor,
    mu: Tensor,
    log_sigma: Tensor,
    mix_logits: Tensor,
    mask: Tensor | None = None,
    *,
    backend: UGMMBackend = "auto",
) -> Tensor:
    """Log-density of every uGMM neuron of a layer at every input row.

    By default (``backend="auto"``) this runs the fused kernels of :mod:`ugmm_vision.ops` on CPU, and on CUDA
    where Triton is installed: they never hold the (B, O, I) component terms beyond a bounded tile, in forward
    or backward. They are differentiable once; use ``backend="reference"`` for higher-order gradients,
    forward-mode AD or ``torch.func`` transforms.

    Args:
        x: inputs, shape (B, I).
        mu: component means, shape (O, I), or (I,) for means tied across the layer's neurons.
        log_sigma: log standard deviations, shape (O, I).
        mix_logits: unnormalised mixing weights, shape (O, I); π[j] = softmax(mix_logits[j]). Entries set to
            −inf are dropped components (mixing dropout); every row must keep at least one finite entry.
        mask: optional boolean (B, I); True marks a missing input, which is marginalised out (its component
            contributes log π only).
        backend: ``"auto"`` — the fused kernels where available for the device, else the reference;
            ``"fused"`` — always the fused kernels (chunked PyTorch ones where no compiled kernel exists);
            ``"reference"`` — :func:`ugmm_log_prob_reference`, which materialises (B, O, I) tensors.

    Returns:
        Log-densities, shape (B, O), in the dtype of ``x``.

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 2, dtype=torch.float64)
        >>> mu, log_sigma, mix = (torch.zeros(1, 2, dtype=torch.float64) for _ in range(3))
        >>> round(ugmm_log_prob(x, mu, log_sigma, mix).item(), 6)  # N(0; 0, 1) = 1/sqrt(2π)
        -0.918939
    """
    validate_ugmm_args(x, mu, log_sigma, mix_logits, mask)
    if resolve_backend(backend, x.device) == "fused":
        return fused_ugmm_log_prob(x, mu, log_sigma, mix_logits, mask)
    return ugmm_log_prob_reference(x, mu, log_sigma, mix_logits, mask)


def mixing_dropout(mix_logits: Tensor, p: float, training: bool = True) -> Tensor:
    """Drop mixture components: a Bernoulli(p) mask over (O, I) sets dropped logits to −inf.

    The softmax then renormalises the surviving weights (the paper's code). A neuron whose every component was
    dropped keeps one random component, so no neuron's log-density becomes −inf (and its gradient NaN).

    Example:
        >>> torch.manual_seed(0) and None
        >>> out = mixing_dropout(torch.zeros(3, 4), p=0.99)
        >>> bool(torch.isfinite(out).any(dim=1).all())
        True
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"Expected `p` in [0, 1), got {p}")
    if not training or p == 0.0:
        return mix_logits
    drop = torch.rand(mix_logits.shape, device=mix_logits.device) < p  # (O, I)
    all_dropped = drop.all(dim=-1)  # (O,)
    if all_dropped.any():
        rows = all_dropped.nonzero().squeeze(-1)  # (R,)
        keep = torch.randint(mix_logits.shape[-1], (rows.numel(),), device=mix_logits.device)  # (R,)
        drop[rows, keep] = False
    return mix_logits.masked_fill(drop, float("-inf"))
