"""The Triton kernels as ``torch.library.triton_op`` operators, visible to ``torch.compile``.

``torch.ops.ugmm_vision.triton_log_prob`` and its backward run the kernels of
:mod:`ugmm_vision.ops.triton_kernels` launched through ``wrap_triton``. Unlike the generic, opaque
``fused_log_prob`` op, a ``triton_op`` is traced into by ``torch.compile``: Inductor sees the Triton kernels in
the compiled graph (it can fuse the surrounding elementwise work and plan their buffers) instead of a Python
call. The dispatcher (:func:`ugmm_vision.ops.fused_ugmm_log_prob`) routes the ``"triton"`` kernel set here.

The operators exist only where Triton is installed. Their fake (shape) implementations are traced from the
Python body, which needs CUDA tensors: on CPU tensors under Triton's interpreter (``TRITON_INTERPRET=1``) they run
eagerly and are tested that way; ``benchmarks/gpu_check.sh`` runs the full ``opcheck`` and a compiled head on a
GPU.
"""

# No `from __future__ import annotations`: torch.library reads the schema from the runtime annotations.

from typing import Any

import torch
from torch import Tensor

from ugmm_vision.ops._common import refuse_double_backward
from ugmm_vision.ops.triton_kernels import TritonKernels, triton

__all__ = ["TRITON_OPS_AVAILABLE"]

TRITON_OPS_AVAILABLE = triton is not None

if TRITON_OPS_AVAILABLE:

    @torch.library.triton_op("ugmm_vision::triton_log_prob", mutates_args=())
    def triton_log_prob(x: Tensor, mu: Tensor, log_sigma: Tensor, log_pi: Tensor, mask: Tensor | None) -> Tensor:
        """y[b, j] = logsumexp_k t[b, j, k] by the Triton forward kernel, (B, O)."""
        return TritonKernels.forward(x, mu, log_sigma, log_pi, mask)

    @torch.library.triton_op("ugmm_vision::triton_log_prob_backward", mutates_args=())
    def triton_log_prob_backward(
        x: Tensor,
        mu: Tensor,
        log_sigma: Tensor,
        log_pi: Tensor,
        mask: Tensor | None,
        y: Tensor,
        grad_y: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Gradients for x, mu, log_sigma and log_pi by the recomputing Triton backward kernels."""
        return tuple(TritonKernels.backward(x, mu, log_sigma, log_pi, mask, y, grad_y.contiguous()))

    def _setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        ctx.save_for_backward(*inputs, output)  # x, mu, log_sigma, log_pi, mask, y

    def _backward(ctx: Any, grad_y: Tensor) -> tuple[Tensor | None, ...]:
        refuse_double_backward()
        x, mu, log_sigma, log_pi, mask, y = ctx.saved_tensors
        return (*triton_log_prob_backward(x, mu, log_sigma, log_pi, mask, y, grad_y), None)

    triton_log_prob.register_autograd(_backward, setup_context=_setup_context)
