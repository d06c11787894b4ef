"""The backend choice for :func:`~ugmm_vision.functional.ugmm_log_prob`, made at the front door.

``backend`` (the user's choice):

* ``"reference"`` — the materialising formula, :func:`~ugmm_vision.functional.ugmm_log_prob_reference`;
* ``"fused"`` — the fused kernels of :mod:`ugmm_vision.ops`: Triton on CUDA, the compiled C++ library on CPU, and
  the chunked PyTorch kernels elsewhere or where those are unavailable (a C++ build failure warns once);
* ``"auto"`` — ``"fused"`` on CPU, and on CUDA where Triton is installed; ``"reference"`` otherwise.

The choice lives here, beside the function that takes it, so that :mod:`ugmm_vision.ops` holds kernels only and
never imports :mod:`ugmm_vision.functional`.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from ugmm_vision.checks import check_choice
from ugmm_vision.ops.registry import triton_usable

__all__ = ["UGMMBackend", "check_backend", "resolve_backend"]

UGMMBackend = Literal["auto", "reference", "fused"]


def check_backend(backend: str) -> str:
    """Return ``backend`` if it names a backend, else raise a ``ValueError``.

    Example:
        >>> check_backend("fast")
        Traceback (most recent call last):
            ...
        ValueError: Expected `backend` to be one of 'auto', 'reference', 'fused', got 'fast'
    """
    return check_choice("backend", backend, get_args(UGMMBackend))


def resolve_backend(backend: str, device: torch.device) -> Literal["reference", "fused"]:
    """The concrete backend that ``backend`` means for tensors on ``device``.

    Example:
        >>> resolve_backend("auto", torch.device("cpu"))
        'fused'
    """
    check_backend(backend)
    if backend == "auto":
        return "fused" if device.type == "cpu" or triton_usable(device) else "reference"
    return backend  # type: ignore[return-value]
