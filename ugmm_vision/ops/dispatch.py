"""The fused uGMM log-density: picks a fused kernel set for the device and calls it.

The choice between the reference formula and the fused kernels (``backend``) is made before this, in
:mod:`ugmm_vision.functional.backend`; this module only chooses among the fused kernel sets (``impl``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from ugmm_vision.ops.autograd import fused_log_prob
from ugmm_vision.ops.registry import FusedImpl

__all__ = ["compute_dtype", "fused_ugmm_log_prob"]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a uGMM log-density is computed in for inputs of ``dtype``: float64 stays, anything else is float32.

    The one dtype rule of both backends: half types lack the range for −½z² and the exponent of log σ.

    Example:
        >>> compute_dtype(torch.bfloat16), compute_dtype(torch.float64)
        (torch.float32, torch.float64)
    """
    return torch.float64 if dtype == torch.float64 else torch.float32


def fused_ugmm_log_prob(
    x: Tensor,
    mu: Tensor,
    log_sigma: Tensor,
    mix_logits: Tensor,
    mask: Tensor | None = None,
    *,
    impl: FusedImpl | Literal["auto"] = "auto",
) -> Tensor:
    """The uGMM log-density through a fused kernel set, as :func:`ugmm_vision.functional.ugmm_log_prob`.

    Arguments are not validated here (``ugmm_log_prob`` does that). Half-precision inputs are computed in
    float32 and the result is cast back to the dtype of ``x``; float64 inputs are computed in float64.

    Args:
        x: inputs, shape (B, I).
        mu: means, shape (O, I), or (I,) when tied.
        log_sigma: log standard deviations, shape (O, I).
        mix_logits: mixing logits, shape (O, I); −inf entries are dropped components.
        mask: optional boolean (B, I), True where an input is missing.
        impl: the kernel set, ``"cpp"``, ``"triton"`` or ``"chunked"``; ``"auto"`` picks the fastest one
            available for the device (see :func:`~ugmm_vision.ops.registry.fused_impl_for`).

    Returns:
        Log-densities, shape (B, O), in the dtype of ``x``.

    Example:
        >>> x = torch.zeros(1, 2)
        >>> mu, log_sigma, mix = (torch.zeros(1, 2) for _ in range(3))
        >>> round(fused_ugmm_log_prob(x, mu, log_sigma, mix, impl="chunked").item(), 5)
        -0.91894
    """
    in_dtype = x.dtype
    compute = compute_dtype(in_dtype)
    x, mu, log_sigma, mix_logits = (t.to(compute).contiguous() for t in (x, mu, log_sigma, mix_logits))
    if x.shape[0] == 0 or x.shape[1] == 0:
        # Nothing to fuse. The logsumexp over no inputs is −inf; the zero-weighted sums keep the answer in the
        # autograd graph of every argument, as the kernels' answer would be.
        anchor = sum((t.sum() * 0 for t in (x, mu, log_sigma, mix_logits.nan_to_num())), x.new_zeros(()))
        y = torch.full((x.shape[0], log_sigma.shape[0]), float("-inf"), dtype=compute, device=x.device) + anchor
        return y.to(in_dtype)
    log_pi = torch.log_softmax(mix_logits, dim=-1)  # (O, I); its backward is chained by autograd
    mask = None if mask is None else mask.contiguous()
    if impl == "triton" or (impl == "auto" and x.device.type == "cuda"):
        from ugmm_vision.ops.triton_ops import TRITON_OPS_AVAILABLE  # imports triton: only on CUDA or when asked

        if TRITON_OPS_AVAILABLE:  # a triton_op: torch.compile sees the Triton kernels, not an opaque call
            return torch.ops.ugmm_vision.triton_log_prob(x, mu, log_sigma, log_pi, mask).to(in_dtype)  # (B, O)
    y = fused_log_prob(x, mu, log_sigma, log_pi, mask, impl)  # (B, O)
    return y.to(in_dtype)
