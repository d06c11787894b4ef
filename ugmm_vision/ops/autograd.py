"""The autograd Function shared by every fused kernel set: saves inputs and output, recomputes in backward."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ugmm_vision.ops._common import UGMMKernels

__all__ = ["FusedUGMMFunction"]


class FusedUGMMFunction(torch.autograd.Function):
    """y = logsumexp_k t[b, j, k] through a :class:`~ugmm_vision.ops._common.UGMMKernels` set.

    Saved for backward: x, mu, log_sigma, log_pi, the mask and the (B, O) output — O(B·I + O·I + B·O) memory;
    the backward kernels recompute the component terms tile by tile. Differentiable once: a backward pass that
    builds a graph (``create_graph=True``) raises, rather than silently treating the gradient as a constant; use
    the reference backend for higher-order gradients.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        mu: Tensor,
        log_sigma: Tensor,
        log_pi: Tensor,
        mask: Tensor | None,
        kernels: type[UGMMKernels],
    ) -> Tensor:
        y = kernels.forward(x, mu, log_sigma, log_pi, mask)  # (B, O)
        ctx.save_for_backward(x, mu, log_sigma, log_pi, mask, y)
        ctx.kernels = kernels
        return y

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor) -> tuple[Tensor | None, ...]:
        if torch.is_grad_enabled():
            raise RuntimeError(
                "The fused uGMM kernels are differentiable once; use backend='reference' for higher-order "
                "gradients (create_graph=True)."
            )
        x, mu, log_sigma, log_pi, mask, y = ctx.saved_tensors
        grads = ctx.kernels.backward(x, mu, log_sigma, log_pi, mask, y, grad_y.contiguous())
        return (*grads, None, None)
