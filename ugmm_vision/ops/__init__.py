"""Fused uGMM kernels and their autograd Function: compiled C++ (CPU), Triton (CUDA), chunked PyTorch.

None of them materialises the (B, O, I) component terms beyond a bounded tile, in forward or backward: the
forward pass is an online logsumexp over inputs, the backward pass recomputes the terms. Most code reaches
them through :func:`ugmm_vision.functional.ugmm_log_prob` (``backend="auto"`` or ``"fused"``).
"""

from ugmm_vision.ops import flops  # registers the FLOP formulas of the custom ops with torch's counter
from ugmm_vision.ops.dispatch import compute_dtype, fused_ugmm_log_prob
from ugmm_vision.ops.registry import FusedImpl, fused_impl_for

__all__ = [
    "FusedImpl",
    "compute_dtype",
    "flops",
    "fused_impl_for",
    "fused_ugmm_log_prob",
]

_MOVED = {"UGMMBackend", "check_backend", "resolve_backend"}  # to ugmm_vision.functional.backend


def __getattr__(name: str) -> object:
    # Lazy, so that importing ops never imports functional (which imports ops): the old names still resolve.
    if name in _MOVED:
        import warnings

        warnings.warn(
            f"ugmm_vision.ops.{name} moved to ugmm_vision.functional.backend; the old name goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        from ugmm_vision.functional import backend

        return getattr(backend, name)
    raise AttributeError(f"module 'ugmm_vision.ops' has no attribute {name!r}")
