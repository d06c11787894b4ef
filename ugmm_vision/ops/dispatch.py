"""Choosing between the reference formula and the fused kernels, and between the fused kernel sets.

``backend`` (the user's choice, see :func:`ugmm_vision.functional.ugmm_log_prob`):

* ``"reference"`` — the materialising formula, :func:`~ugmm_vision.functional.ugmm_log_prob_reference`;
* ``"fused"`` — the fused kernels: Triton on CUDA, the compiled C++ library on CPU, and the chunked PyTorch
  kernels elsewhere or where those are unavailable (a C++ build failure warns once);
* ``"auto"`` — ``"fused"`` on CPU, and on CUDA where Triton is installed; ``"reference"`` otherwise.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Literal, get_args

import torch
from torch import Tensor

from ugmm_vision.ops._common import UGMMKernels
from ugmm_vision.ops.autograd import FusedUGMMFunction
from ugmm_vision.ops.chunked import ChunkedKernels
from ugmm_vision.ops.cpu import CppKernels, cpu_library_error, load_cpu_library

__all__ = [
    "FusedImpl",
    "UGMMBackend",
    "check_backend",
    "fused_impl_for",
    "fused_ugmm_log_prob",
    "resolve_backend",
]

UGMMBackend = Literal["auto", "reference", "fused"]
FusedImpl = Literal["cpp", "triton", "chunked"]

_warned_fallback = False


def check_backend(backend: str) -> str:
    """Return ``backend`` if it names a backend, else raise a ``ValueError``."""
    if backend not in get_args(UGMMBackend):
        raise ValueError(f"Expected `backend` to be one of 'auto', 'reference', 'fused', got {backend!r}")
    return backend


def _triton_usable(device: torch.device) -> bool:
    return device.type == "cuda" and importlib.util.find_spec("triton") is not None


def resolve_backend(backend: str, device: torch.device) -> Literal["reference", "fused"]:
    """The concrete backend that ``backend`` means for tensors on ``device``."""
    check_backend(backend)
    if backend == "auto":
        return "fused" if device.type == "cpu" or _triton_usable(device) else "reference"
    return backend  # type: ignore[return-value]


def fused_impl_for(device: torch.device) -> FusedImpl:
    """The fastest fused kernel set available for ``device``; warns once when the C++ build failed on CPU."""
    global _warned_fallback
    if _triton_usable(device):
        return "triton"
    if device.type == "cpu":
        if load_cpu_library() is not None:
            return "cpp"
        if not _warned_fallback:
            _warned_fallback = True
            warnings.warn(
                f"ugmm_vision: the C++ uGMM kernel is unavailable ({cpu_library_error()}); "
                "using the slower chunked PyTorch kernel.",
                RuntimeWarning,
                stacklevel=4,
            )
    return "chunked"


def _kernels(impl: FusedImpl) -> type[UGMMKernels]:
    if impl == "cpp":
        return CppKernels
    if impl == "chunked":
        return ChunkedKernels
    if impl == "triton":
        from ugmm_vision.ops.triton_kernels import TritonKernels  # imports triton: only when asked for

        return TritonKernels
    raise ValueError(f"Expected `impl` to be one of 'cpp', 'triton', 'chunked', got {impl!r}")


def fused_ugmm_log_prob(
    x: Tensor,
    mu: Tensor,
    log_sigma: Tensor,
    mix_logits: Tensor,
    mask: Tensor | None = None,
    *,
    impl: FusedImpl | type[UGMMKernels] | None = None,
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
        impl: the kernel set, ``"cpp"``, ``"triton"`` or ``"chunked"`` (or a class implementing
            :class:`~ugmm_vision.ops._common.UGMMKernels`); None picks the fastest one for the device.

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
    if impl is None:
        impl = fused_impl_for(x.device)
    kernels = _kernels(impl) if isinstance(impl, str) else impl
    mask = None if mask is None else mask.contiguous()
    y = FusedUGMMFunction.apply(x, mu, log_sigma, log_pi, mask, kernels)  # (B, O)
    return y.to(in_dtype)
