"""Choosing between the reference formula and the fused kernels, and between the fused kernel sets.

``backend`` (the user's choice, see :func:`ugmm_vision.functional.ugmm_log_prob`):

* ``"reference"`` — the materialising formula, :func:`~ugmm_vision.functional.ugmm_log_prob_reference`;
* ``"fused"`` — the fused kernels: Triton on CUDA, the compiled C++ library on CPU, and the chunked PyTorch
  kernels elsewhere or where those are unavailable (a C++ build failure warns once);
* ``"auto"`` — ``"fused"`` on CPU, and on CUDA where Triton is installed; ``"reference"`` otherwise.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

from ugmm_vision.ops.autograd import fused_log_prob
from ugmm_vision.ops.registry import FusedImpl, triton_usable

__all__ = ["UGMMBackend", "check_backend", "fused_ugmm_log_prob", "resolve_backend"]

UGMMBackend = Literal["auto", "reference", "fused"]


def check_backend(backend: str) -> str:
    """Return ``backend`` if it names a backend, else raise a ``ValueError``."""
    if backend not in get_args(UGMMBackend):
        raise ValueError(f"Expected `backend` to be one of 'auto', 'reference', 'fused', got {backend!r}")
    return backend


def resolve_backend(backend: str, device: torch.device) -> Literal["reference", "fused"]:
    """The concrete backend that ``backend`` means for tensors on ``device``."""
    check_backend(backend)
    if backend == "auto":
        return "fused" if device.type == "cpu" or triton_usable(device) else "reference"
    return backend  # type: ignore[return-value]


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
    compute = torch.float64 if in_dtype == torch.float64 else torch.float32
    x, mu, log_sigma, mix_logits = (t.to(compute).contiguous() for t in (x, mu, log_sigma, mix_logits))
    if x.shape[0] == 0 or x.shape[1] == 0:
        from ugmm_vision.functional.ugmm import ugmm_log_prob_reference  # nothing to fuse in an empty batch

        return ugmm_log_prob_reference(x, mu, log_sigma, mix_logits, mask).to(in_dtype)
    log_pi = torch.log_softmax(mix_logits, dim=-1)  # (O, I); its backward is chained by autograd
    mask = None if mask is None else mask.contiguous()
    if impl == "triton" or (impl == "auto" and x.device.type == "cuda"):
        from ugmm_vision.ops.triton_ops import TRITON_OPS_AVAILABLE  # imports triton: only on CUDA or when asked

        if TRITON_OPS_AVAILABLE:  # a triton_op: torch.compile sees the Triton kernels, not an opaque call
            return torch.ops.ugmm_vision.triton_log_prob(x, mu, log_sigma, log_pi, mask).to(in_dtype)  # (B, O)
    y = fused_log_prob(x, mu, log_sigma, log_pi, mask, impl)  # (B, O)
    return y.to(in_dtype)
