"""Fused uGMM kernels and their autograd Function: compiled C++ (CPU), Triton (CUDA), chunked PyTorch.

None of them materialises the (B, O, I) component terms beyond a bounded tile, in forward or backward: the
forward pass is an online logsumexp over inputs, the backward pass recomputes the terms. Most code reaches
them through :func:`ugmm_vision.functional.ugmm_log_prob` (``backend="auto"`` or ``"fused"``).
"""

from ugmm_vision.ops import flops  # registers the FLOP formulas of the custom ops with torch's counter
from ugmm_vision.ops.dispatch import UGMMBackend, check_backend, fused_ugmm_log_prob, resolve_backend
from ugmm_vision.ops.registry import FusedImpl, fused_impl_for

__all__ = [
    "FusedImpl",
    "UGMMBackend",
    "check_backend",
    "flops",
    "fused_impl_for",
    "fused_ugmm_log_prob",
    "resolve_backend",
]
