"""The fused uGMM operator shared by every kernel set: a ``torch.library`` custom op with its autograd formula.

``torch.ops.ugmm_vision.fused_log_prob(x, mu, log_sigma, log_pi, mask, impl)`` returns the (B, O) log-densities
and saves only its inputs and output for backward, where ``torch.ops.ugmm_vision.fused_log_prob_backward``
recomputes the component terms tile by tile. Being custom ops (opaque to ``torch.compile``, with fake
implementations for shape propagation) they compile into a model's graph without breaking it.

The operator is differentiable once: a backward pass that builds a graph (``create_graph=True``) raises rather
than silently treating the gradient as a constant; the reference backend serves higher-order gradients.

``torch.func.vmap`` has a batching rule: where only ``x`` (and ``mask``) are batched — per-sample evaluation —
the vmapped rows are merged into one kernel call; where parameters are batched (ensembles), one call per slice.
Ordinary autograd through a vmapped call works. ``torch.func.grad``/``jvp`` do not: torch's custom-op autograd
is not a functorch transform (it raises "In order to use an autograd.Function with functorch transforms…"); use
``backend="reference"`` there.
"""

# No `from __future__ import annotations`: torch.library reads the schema from the runtime annotations.

from typing import Any

import torch
from torch import Tensor

from ugmm_vision.ops._common import refuse_double_backward
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
    refuse_double_backward()
    x, mu, log_sigma, log_pi, mask, y = ctx.saved_tensors
    grads = fused_log_prob_backward(x, mu, log_sigma, log_pi, mask, y, grad_y, ctx.impl)
    return (*grads, None, None)


fused_log_prob.register_autograd(_backward, setup_context=_setup_context)


def _move_batch_dim(t: Tensor | None, dim: int | None, size: int) -> Tensor | None:
    """``t`` with its vmapped dimension first (expanded to ``size`` where it had none), or None."""
    if t is None:
        return None
    return t.movedim(dim, 0) if dim is not None else t.expand(size, *t.shape)


def _fused_vmap(info: Any, in_dims: tuple, x: Tensor, mu, log_sigma, log_pi, mask, impl: str):
    """vmap of ``fused_log_prob``: one kernel call on the merged rows where only ``x`` (and ``mask``) are
    batched — the per-sample case of ``torch.func`` — and one call per slice where the parameters are."""
    x_dim, mu_dim, ls_dim, lp_dim, mask_dim, _ = in_dims
    n = info.batch_size
    if mu_dim is None and ls_dim is None and lp_dim is None:
        xs = _move_batch_dim(x, x_dim, n)  # (N, B, I)
        masks = _move_batch_dim(mask, mask_dim, n)  # (N, B, I) or None
        flat_mask = None if masks is None else masks.reshape(-1, masks.shape[-1]).contiguous()  # (N·B, I)
        y = fused_log_prob(xs.reshape(-1, xs.shape[-1]).contiguous(), mu, log_sigma, log_pi, flat_mask, impl)
        return y.view(n, xs.shape[1], -1), 0  # (N, B, O)
    args = [_move_batch_dim(t, d, n) for t, d in zip((x, mu, log_sigma, log_pi, mask), in_dims[:5], strict=True)]
    slices = [[None if t is None else t[i].contiguous() for t in args] for i in range(n)]
    return torch.stack([fused_log_prob(*s, impl) for s in slices]), 0  # (N, B, O)


torch.library.register_vmap("ugmm_vision::fused_log_prob", _fused_vmap)
