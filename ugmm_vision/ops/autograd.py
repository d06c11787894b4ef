"""The fused uGMM operator shared by every kernel set: a ``torch.library`` custom op with its autograd formula.

``torch.ops.ugmm_vision.fused_log_prob(x, mu, log_sigma, log_pi, mask, impl)`` returns the (B, O) log-densities
and saves only its inputs and output for backward, where ``torch.ops.ugmm_vision.fused_log_prob_backward``
recomputes the component terms tile by tile. Being custom ops (opaque to ``torch.compile``, with fake
implementations for shape propagation) they compile into a model's graph without breaking it.

The operator is differentiable once: a backward pass that builds a graph (``create_graph=True``) raises rather
than silently treating the gradient as a constant; the reference backend serves higher-order gradients.
"""

# No `from __future__ import annotations`: torch.library reads the schema from the runtime annotations.

from typing import Any

import torch
from torch import Tensor

from ugmm_vision.ops.registry import kernel_set

__all__ = ["fused_log_prob"]


@torch.library.custom_op("ugmm_vision::fused_log_prob", mutates_args=())
def fused_log_prob(x: Tensor, mu: Tensor, log_sigma: Tensor, log_pi: Tensor, mask: Tensor | None, impl: str) -> Tensor:
    """y[b, j] = logsumexp_k t[b, j, k] (see :mod:`ugmm_vision.ops._common`) through the kernel set ``impl``."""
    return kernel_set(impl, x.device).forward(x, mu, log_sigma, log_pi, mask)


@fused_log_prob.register_fake
def _(x: Tensor, mu: Tensor, log_sigma: Tensor, log_pi: Tensor, mask: Tensor | None, impl: str) -> Tensor:
    return x.new_empty(x.shape[0], log_sigma.shape[0])  # (B, O)


@torch.library.custom_op("ugmm_vision::fused_log_prob_backward", mutates_args=())
def fused_log_prob_backward(
    x: Tensor,
    mu: Tensor,
    log_sigma: Tensor,
    log_pi: Tensor,
    mask: Tensor | None,
    y: Tensor,
    grad_y: Tensor,
    impl: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients of ``fused_log_prob`` for x, mu, log_sigma and log_pi, recomputing the terms."""
    return tuple(kernel_set(impl, x.device).backward(x, mu, log_sigma, log_pi, mask, y, grad_y.contiguous()))


@fused_log_prob_backward.register_fake
def _(
    x: Tensor,
    mu: Tensor,
    log_sigma: Tensor,
    log_pi: Tensor,
    mask: Tensor | None,
    y: Tensor,
    grad_y: Tensor,
    impl: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return torch.empty_like(x), torch.empty_like(mu), torch.empty_like(log_sigma), torch.empty_like(log_pi)


def _setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
    x, mu, log_sigma, log_pi, mask, impl = inputs
    ctx.save_for_backward(x, mu, log_sigma, log_pi, mask, output)
    ctx.impl = impl


def _backward(ctx: Any, grad_y: Tensor) -> tuple[Tensor | None, ...]:
    if torch.is_grad_enabled():
        raise RuntimeError(
            "The fused uGMM kernels are differentiable once; use backend='reference' for higher-order "
            "gradients (create_graph=True)."
        )
    x, mu, log_sigma, log_pi, mask, y = ctx.saved_tensors
    grads = fused_log_prob_backward(x, mu, log_sigma, log_pi, mask, y, grad_y, ctx.impl)
    return (*grads, None, None)


fused_log_prob.register_autograd(_backward, setup_context=_setup_context)
