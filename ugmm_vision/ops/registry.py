"""The fused kernel sets by name, and the choice of the fastest one available for a device."""

from __future__ import annotations

import functools
import importlib.util
import warnings
from typing import Literal

import torch

from ugmm_vision.ops._common import UGMMKernels
from ugmm_vision.ops.chunked import ChunkedKernels
from ugmm_vision.ops.cpu import CppKernels, cpu_library_error, load_cpu_library

__all__ = ["FusedImpl", "fused_impl_for", "kernel_set", "triton_usable"]

FusedImpl = Literal["cpp", "triton", "chunked"]

_warned_fallback = False


@functools.cache
def _triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def triton_usable(device: torch.device) -> bool:
    """Whether the Triton kernels can run on ``device`` (a CUDA device, with Triton installed)."""
    return device.type == "cuda" and _triton_installed()


def fused_impl_for(device: torch.device) -> FusedImpl:
    """The fastest kernel set available for ``device``; warns once when the C++ library is unavailable."""
    global _warned_fallback
    if triton_usable(device):
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
                stacklevel=2,
            )
    return "chunked"


def kernel_set(impl: str, device: torch.device) -> type[UGMMKernels]:
    """The kernel set named ``impl`` (``"auto"``: the fastest one for ``device``)."""
    if impl == "auto":
        impl = fused_impl_for(device)
    if impl == "cpp":
        return CppKernels
    if impl == "chunked":
        return ChunkedKernels
    if impl == "triton":
        from ugmm_vision.ops.triton_kernels import TritonKernels  # imports triton: only when asked for

        return TritonKernels
    raise ValueError(f"Expected `impl` to be one of 'auto', 'cpp', 'triton', 'chunked', got {impl!r}")
