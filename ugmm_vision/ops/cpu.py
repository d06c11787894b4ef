"""The fused CPU kernels: a C++ library compiled once per machine, loaded with ``ctypes``.

The library is built at first use with the system C++ compiler (``$CXX``, else ``c++``/``g++``/``clang++``)
— no ninja and no PyTorch headers, so the build takes about a second — and cached in the PyTorch extensions
directory (``$TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``) under a name that hashes the
source, the flags, the compiler and the CPU. A process builds or loads it at most once. Where it cannot be
built (no compiler, an unsupported platform) :func:`load_cpu_library` returns None with the reason, and the
dispatcher falls back to the chunked PyTorch kernels of :mod:`ugmm_vision.ops.chunked`.

Flags: ``-O3 -march=native`` with ``-fno-math-errno -fno-trapping-math -ffp-contract=fast`` rather than
``-ffast-math``, whose ``-ffinite-math-only`` would let the compiler assume away the −inf logits of dropped
components; the SIMD is written out with vector extensions, so nothing depends on auto-vectorisation.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import torch
from torch import Tensor

from ugmm_vision.ops._common import problem_sizes

__all__ = ["CPP_SOURCE", "CppKernels", "cpu_library_error", "load_cpu_library"]

# The kernels' C++17 source, shipped as package data (pyproject.toml): GCC/Clang vector extensions and OpenMP,
# no PyTorch headers, so a build takes about a second. It is part of the build cache key below.
CPP_SOURCE = files(__package__).joinpath("ugmm_cpu.cpp").read_text(encoding="utf-8")

_BASE_FLAGS = (
    "-O3",
    "-march=native",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-ffp-contract=fast",
    "-std=c++17",
    "-fPIC",
    "-shared",
)
_ABI_VERSION = 2
_SERIAL_BELOW = 1 << 16  # B·O·I below which one thread beats starting a parallel region

_lock = threading.Lock()
_state: dict[str, object] = {}


def _cache_dir() -> Path:
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    if root is None:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch_extensions")
    return Path(root) / "ugmm_vision_cpu"


def _find_compiler() -> str | None:
    candidates = [os.environ.get("CXX"), "c++", "g++", "clang++"]
    return next((path for c in candidates if c and (path := shutil.which(c))), None)


def _cpu_identity() -> str:
    """What ``-march=native`` depends on: the architecture and, on Linux, the CPU's feature flags."""
    ident = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            ident += next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return ident


def _build(compiler: str, flags: tuple[str, ...], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / "ugmm_cpu.cpp"
        src.write_text(CPP_SOURCE)
        out = Path(tmp) / target.name
        proc = subprocess.run([compiler, *flags, str(src), "-o", str(out)], capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"{compiler} failed: {proc.stderr.strip()[-500:]}")
        os.replace(out, target)  # atomic: concurrent builders (pytest-xdist workers) never see a partial file


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    i64, ptr, cint = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    head = [i64, i64, i64, ptr, ptr, ptr, cint, ptr, ptr]  # B, O, I, x, mask, mu, tied, log_sigma, log_pi
    for suffix in ("f32", "f64"):
        fwd = getattr(lib, f"ugmm_forward_{suffix}")
        fwd.argtypes, fwd.restype = [*head, ptr, cint], cint  # y, threads
        bwd = getattr(lib, f"ugmm_backward_{suffix}")
        bwd.argtypes, bwd.restype = [*head, ptr, ptr, ptr, ptr, ptr, ptr, cint], cint  # y, g, gx, glp, gmu, gls
    lib.ugmm_abi_version.restype = cint
    if lib.ugmm_abi_version() != _ABI_VERSION:
        raise RuntimeError("stale library (ABI version mismatch)")
    return lib


def _build_and_load(compiler: str | None) -> ctypes.CDLL:
    if os.name != "posix":
        raise RuntimeError(f"the C++ kernel is built on POSIX systems only, not {os.name!r}")
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set $CXX or install g++/clang++)")
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
    errors = []
    for extra in (("-fopenmp",), ()):  # OpenMP threads if the toolchain has them, else one thread
        flags = (*_BASE_FLAGS, *extra)
        key = "\n".join((CPP_SOURCE, " ".join(flags), compiler, version, _cpu_identity()))
        target = _cache_dir() / f"ugmm_cpu_{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"
        try:
            if not target.exists():
                _build(compiler, flags, target)
            try:
                lib = ctypes.CDLL(str(target))
            except OSError:  # a truncated or foreign cache entry: rebuild it once
                _build(compiler, flags, target)
                lib = ctypes.CDLL(str(target))
            return _declare(lib)
        except (OSError, RuntimeError, subprocess.SubprocessError) as err:
            errors.append(str(err))
    raise RuntimeError("; ".join(errors))


def load_cpu_library() -> ctypes.CDLL | None:
    """The compiled kernel library, building it on first use; None where it cannot be built.

    The outcome (library or failure) is remembered for the rest of the process.
    """
    with _lock:
        if "lib" not in _state:
            try:
                _state["lib"] = _build_and_load(_find_compiler())
            except (OSError, RuntimeError, subprocess.SubprocessError) as err:
                _state["lib"], _state["error"] = None, str(err)
        return _state["lib"]  # type: ignore[return-value]


def cpu_library_error() -> str | None:
    """Why the C++ kernel library could not be built or loaded (None if it loaded or was never tried)."""
    return _state.get("error")  # type: ignore[return-value]


def _library() -> ctypes.CDLL:
    lib = load_cpu_library()
    if lib is None:
        raise RuntimeError(f"The C++ uGMM kernel is unavailable: {cpu_library_error()}")
    return lib


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _threads(work: int) -> int:
    return 1 if work < _SERIAL_BELOW else torch.get_num_threads()


def _call(fn: Callable[..., int], *args: object) -> None:
    if fn(*args) != 0:
        raise MemoryError("The C++ uGMM kernel could not allocate its padded operands")


def _common_args(
    x: Tensor, mu: Tensor, log_sigma: Tensor, log_pi: Tensor, mask: Tensor | None
) -> tuple[ctypes.CDLL, str, list]:
    if x.dtype not in (torch.float32, torch.float64) or x.device.type != "cpu":
        raise ValueError(f"Expected float32/float64 CPU tensors for the C++ kernel, got {x.dtype}, {x.device}")
    suffix = "f32" if x.dtype == torch.float32 else "f64"
    batch, n_out, n_in = problem_sizes(x, log_sigma)
    tensors = (x, mask, mu, log_sigma, log_pi)
    if any(t is not None and not t.is_contiguous() for t in tensors):
        raise ValueError("Expected contiguous tensors for the C++ kernel")
    args = [batch, n_out, n_in, _ptr(x), _ptr(mask), _ptr(mu), int(mu.dim() == 1), _ptr(log_sigma), _ptr(log_pi)]
    return _library(), suffix, args


class CppKernels:
    """The compiled CPU kernels behind the :class:`~ugmm_vision.ops._common.UGMMKernels` interface.

    The library pads the operands itself (components to a multiple of 32, with zero-weight padding) and
    computes ``a`` and ``sc`` (see :mod:`ugmm_vision.ops._common`) in the same parallel pass, so a call is a
    single native call with no extra PyTorch operators.
    """

    @staticmethod
    def forward(x: Tensor, mu: Tensor, log_sigma: Tensor, log_pi: Tensor, mask: Tensor | None) -> Tensor:
        lib, suffix, args = _common_args(x, mu, log_sigma, log_pi, mask)
        batch, n_out, n_in = args[:3]
        y = x.new_empty(batch, n_out)  # (B, O)
        _call(getattr(lib, f"ugmm_forward_{suffix}"), *args, _ptr(y), _threads(batch * n_out * n_in))
        return y

    @staticmethod
    def backward(
        x: Tensor,
        mu: Tensor,
        log_sigma: Tensor,
        log_pi: Tensor,
        mask: Tensor | None,
        y: Tensor,
        grad_y: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        lib, suffix, args = _common_args(x, mu, log_sigma, log_pi, mask)
        batch, n_out, n_in = args[:3]
        grad_x = torch.empty_like(x)  # (B, I)
        grad_mu = torch.empty_like(mu)  # (O, I), or (I,) summed over the neurons when tied
        grad_ls, grad_lp = torch.empty_like(log_sigma), torch.empty_like(log_pi)  # (O, I) each
        outs = (y, grad_y, grad_x, grad_lp, grad_mu, grad_ls)
        _call(
            getattr(lib, f"ugmm_backward_{suffix}"),
            *args,
            *(_ptr(t) for t in outs),
            _threads(batch * n_out * n_in),
        )
        return grad_x, grad_mu, grad_ls, grad_lp
