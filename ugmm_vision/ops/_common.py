"""What every fused uGMM kernel shares: the per-component constants and the kernel-set interface.

Every kernel evaluates the component log-density in the form

    t[b, j, k] = a[j, k] − (sc[j, k] · (x[b, k] − μ[j, k]))²,  a = log π − log σ − ½·log(2π),  sc = 1/(σ·√2)

(or ``t = log π[j, k]`` where input ``k`` of row ``b`` is missing), and ``y[b, j] = logsumexp_k t[b, j, k]``.
With ``p = g · exp(t − y)`` (``g`` the upstream gradient) and ``z = sc · (x − μ)`` (``z = 0`` for missing
inputs), the gradients are::

    ∂/∂log π = Σ_b p        ∂/∂μ = 2·sc·Σ_b p·z        ∂/∂log σ = Σ_b p·(2z² − 1) (observed terms only)
    ∂/∂x = −2·Σ_j p·z·sc

The chain rule through ``log π = log_softmax(mix_logits)`` is left to autograd.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor

from ugmm_vision.constants import HALF_LOG_2PI

SQRT_HALF = math.sqrt(0.5)


def component_terms(log_sigma: Tensor, log_pi: Tensor) -> tuple[Tensor, Tensor]:
    """The per-component offset ``a`` and scale ``sc`` of the docstring above, both (O, I)."""
    a = log_pi - log_sigma - HALF_LOG_2PI  # (O, I)
    sc = torch.exp(-log_sigma) * SQRT_HALF  # (O, I)
    return a, sc


def problem_sizes(x: Tensor, log_sigma: Tensor) -> tuple[int, int, int]:
    """The rows ``B``, neurons ``O`` and inputs ``I`` of a call: ``x`` (B, I), ``log_sigma`` (O, I)."""
    batch, n_in = x.shape
    return batch, log_sigma.shape[0], n_in


def refuse_double_backward() -> None:
    """Raise where a fused backward pass is asked to build a graph (``create_graph=True``): the kernels'
    gradients are not differentiable themselves, and treating them as constants would be silently wrong."""
    if torch.is_grad_enabled():
        raise RuntimeError(
            "The fused uGMM kernels are differentiable once; use backend='reference' for higher-order "
            "gradients (create_graph=True)."
        )


def reduce_tied_mean_grad(grad_mu: Tensor, mu: Tensor) -> Tensor:
    """Sum the mean gradients (O, I) over the neurons when the means are tied (``mu`` of shape (I,))."""
    return grad_mu.sum(dim=0) if mu.dim() == 1 else grad_mu


class UGMMKernels(Protocol):
    """A forward kernel and its recomputing backward, over float32 or float64 contiguous tensors.

    ``x`` (B, I); ``mu`` (O, I) or (I,); ``log_sigma``, ``log_pi`` (O, I); ``mask`` bool (B, I) or None;
    ``y`` and ``grad_y`` (B, O). ``backward`` returns the gradients of ``x``, ``mu``, ``log_sigma`` and
    ``log_pi``, shaped like them.
    """

    @staticmethod
    def forward(x: Tensor, mu: Tensor, log_sigma: Tensor, log_pi: Tensor, mask: Tensor | None) -> Tensor: ...

    @staticmethod
    def backward(
        x: Tensor,
        mu: Tensor,
        log_sigma: Tensor,
        log_pi: Tensor,
        mask: Tensor | None,
        y: Tensor,
        grad_y: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]: ...
