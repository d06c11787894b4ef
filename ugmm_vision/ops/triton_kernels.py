"""Triton kernels for the fused uGMM log-density on CUDA (forward, and a recomputing backward).

Each program holds a (BLOCK_B, BLOCK_O, BLOCK_K) tile of component terms in registers and nothing of size
(n_rows, n_out, n_in) is ever written to memory:

* forward — grid over (rows, neurons); loops over inputs with an online logsumexp;
* backward for x — grid over (rows, inputs); loops over neurons, recomputing the terms;
* backward for the parameters — grid over (neurons, inputs); loops over rows, recomputing the terms.

The two backward kernels recompute the exponentials once each instead of contending on atomics, so the results
are deterministic. The kernels also run on CPU tensors under Triton's interpreter (``TRITON_INTERPRET=1`` set
before this module is imported), which is how the test suite checks them on machines without a GPU.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ugmm_vision.ops._common import component_terms, problem_sizes, reduce_tied_mean_grad

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only PyTorch builds ship without Triton: the module still imports (docs, doctest
    triton = tl = None  # collection), the registry never picks these kernels, and launching them raises.


def _jit(fn):
    return fn if triton is None else triton.jit(fn)


def _launch(kernel):
    """``kernel`` wrapped by ``torch.library.wrap_triton``: launched as is in eager mode, and recorded as a Triton
    kernel that Inductor sees when traced inside a ``triton_op`` (:mod:`ugmm_vision.ops.triton_ops`)."""
    return torch.library.wrap_triton(kernel)


def _require_triton() -> None:
    if triton is None:
        raise RuntimeError("The Triton uGMM kernels need the `triton` package, which is not installed")


__all__ = ["TritonKernels"]

# Tile sizes (rows, neurons, inputs) and warps: a 4096-entry tile per program of 4 warps.
BLOCKS = {"BLOCK_B": 16, "BLOCK_O": 16, "BLOCK_K": 16}
NUM_WARPS = 4


@_jit
def _tile_terms(x, missing, mu, a, sc, lp, HAS_MASK: tl.constexpr):
    """Terms t and scaled distances z of a tile: x, missing (b, k); mu, a, sc, lp (o, k) → (b, o, k)."""
    z = (x[:, None, :] - mu[None, :, :]) * sc[None, :, :]
    t = a[None, :, :] - z * z
    if HAS_MASK:
        t = tl.where(missing[:, None, :], lp[None, :, :], t)
        z = tl.where(missing[:, None, :], 0.0, z)
    return t, z


@_jit
def _tile_index(offs_r, offs_c, n_r, n_c):
    """In-range flags and flat offsets of the (r, c) tile at rows offs_r, columns offs_c of an (n_r, n_c) array."""
    ok = (offs_r[:, None] < n_r) & (offs_c[None, :] < n_c)
    idx = offs_r[:, None].to(tl.int64) * n_c + offs_c[None, :]
    return ok, idx


@_jit
def _load_rows(x_ptr, mask_ptr, offs_b, offs_k, n_rows, n_in, HAS_MASK: tl.constexpr):
    """x and the missing-input flags of rows offs_b and inputs offs_k, (b, k); out of range: 0, observed."""
    ok, idx = _tile_index(offs_b, offs_k, n_rows, n_in)
    x = tl.load(x_ptr + idx, mask=ok, other=0.0)
    if HAS_MASK:
        missing = tl.load(mask_ptr + idx, mask=ok, other=0) != 0
    else:
        missing = ok
    return x, missing


@_jit
def _load_params(mu_ptr, a_ptr, sc_ptr, lp_ptr, offs_o, offs_k, n_out, n_in, stride_mu):
    """Parameters of neurons offs_o and inputs offs_k, (o, k); out of range: a = lp = −inf (weight zero)."""
    ok, idx = _tile_index(offs_o, offs_k, n_out, n_in)
    mu = tl.load(mu_ptr + offs_o[:, None].to(tl.int64) * stride_mu + offs_k[None, :], mask=ok, other=0.0)
    a = tl.load(a_ptr + idx, mask=ok, other=float("-inf"))
    sc = tl.load(sc_ptr + idx, mask=ok, other=0.0)
    lp = tl.load(lp_ptr + idx, mask=ok, other=float("-inf"))
    return mu, a, sc, lp


@_jit
def _load_outputs(y_ptr, g_ptr, offs_b, offs_o, n_rows, n_out):
    """y and its gradient, (b, o); out of range: y = +inf and g = 0, so that p = g·exp(t − y) = 0 exactly."""
    ok, idx = _tile_index(offs_b, offs_o, n_rows, n_out)
    y = tl.load(y_ptr + idx, mask=ok, other=float("inf"))
    g = tl.load(g_ptr + idx, mask=ok, other=0.0)
    return y, g


@_jit
def _forward_kernel(
    x_ptr,
    mask_ptr,
    mu_ptr,
    a_ptr,
    sc_ptr,
    lp_ptr,
    y_ptr,
    n_rows,
    n_out,
    n_in,
    stride_mu,
    HAS_MASK: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_O: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    offs_b = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_o = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    dtype = y_ptr.dtype.element_ty
    run_max = tl.full((BLOCK_B, BLOCK_O), float("-inf"), dtype)
    run_sum = tl.zeros((BLOCK_B, BLOCK_O), dtype)
    for k0 in range(0, n_in, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        x, missing = _load_rows(x_ptr, mask_ptr, offs_b, offs_k, n_rows, n_in, HAS_MASK)
        mu, a, sc, lp = _load_params(mu_ptr, a_ptr, sc_ptr, lp_ptr, offs_o, offs_k, n_out, n_in, stride_mu)
        t, _ = _tile_terms(x, missing, mu, a, sc, lp, HAS_MASK)  # (b, o, k)
        new_max = tl.maximum(run_max, tl.max(t, axis=2))  # (b, o)
        shift = tl.where(new_max == float("-inf"), 0.0, new_max)  # never −inf, so no −inf − (−inf)
        run_sum = run_sum * tl.exp(run_max - shift) + tl.sum(tl.exp(t - shift[:, :, None]), axis=2)
        run_max = new_max
    ok, idx = _tile_index(offs_b, offs_o, n_rows, n_out)
    run_sum = tl.where(ok, run_sum, 1.0)  # out-of-range tiles hold no components: keep log(0) out
    tl.store(y_ptr + idx, run_max + tl.log(run_sum), mask=ok)


@_jit
def _backward_x_kernel(
    x_ptr,
    mask_ptr,
    mu_ptr,
    a_ptr,
    sc_ptr,
    lp_ptr,
    y_ptr,
    g_ptr,
    gx_ptr,
    n_rows,
    n_out,
    n_in,
    stride_mu,
    HAS_MASK: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_O: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    offs_b = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_k = tl.program_id(1) * BLOCK_K + tl.arange(0, BLOCK_K)
    x, missing = _load_rows(x_ptr, mask_ptr, offs_b, offs_k, n_rows, n_in, HAS_MASK)
    acc = tl.zeros((BLOCK_B, BLOCK_K), gx_ptr.dtype.element_ty)
    for o0 in range(0, n_out, BLOCK_O):
        offs_o = o0 + tl.arange(0, BLOCK_O)
        mu, a, sc, lp = _load_params(mu_ptr, a_ptr, sc_ptr, lp_ptr, offs_o, offs_k, n_out, n_in, stride_mu)
        y, g = _load_outputs(y_ptr, g_ptr, offs_b, offs_o, n_rows, n_out)
        t, z = _tile_terms(x, missing, mu, a, sc, lp, HAS_MASK)  # (b, o, k)
        p = g[:, :, None] * tl.exp(t - y[:, :, None])  # (b, o, k)
        acc += tl.sum(p * z * sc[None, :, :], axis=1)  # (b, k)
    ok, idx = _tile_index(offs_b, offs_k, n_rows, n_in)
    tl.store(gx_ptr + idx, -2.0 * acc, mask=ok)


@_jit
def _backward_params_kernel(
    x_ptr,
    mask_ptr,
    mu_ptr,
    a_ptr,
    sc_ptr,
    lp_ptr,
    y_ptr,
    g_ptr,
    glp_ptr,
    gmu_ptr,
    gls_ptr,
    n_rows,
    n_out,
    n_in,
    stride_mu,
    HAS_MASK: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_O: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    offs_o = tl.program_id(0) * BLOCK_O + tl.arange(0, BLOCK_O)
    offs_k = tl.program_id(1) * BLOCK_K + tl.arange(0, BLOCK_K)
    mu, a, sc, lp = _load_params(mu_ptr, a_ptr, sc_ptr, lp_ptr, offs_o, offs_k, n_out, n_in, stride_mu)
    dtype = glp_ptr.dtype.element_ty
    sum_p = tl.zeros((BLOCK_O, BLOCK_K), dtype)
    sum_pz = tl.zeros((BLOCK_O, BLOCK_K), dtype)
    sum_pzz = tl.zeros((BLOCK_O, BLOCK_K), dtype)
    sum_observed = tl.zeros((BLOCK_O, BLOCK_K), dtype)
    for b0 in range(0, n_rows, BLOCK_B):
        offs_b = b0 + tl.arange(0, BLOCK_B)
        x, missing = _load_rows(x_ptr, mask_ptr, offs_b, offs_k, n_rows, n_in, HAS_MASK)
        y, g = _load_outputs(y_ptr, g_ptr, offs_b, offs_o, n_rows, n_out)
        t, z = _tile_terms(x, missing, mu, a, sc, lp, HAS_MASK)  # (b, o, k)
        p = g[:, :, None] * tl.exp(t - y[:, :, None])  # (b, o, k)
        w = p * z  # (b, o, k)
        sum_p += tl.sum(p, axis=0)  # (o, k)
        sum_pz += tl.sum(w, axis=0)
        sum_pzz += tl.sum(w * z, axis=0)
        if HAS_MASK:
            sum_observed += tl.sum(tl.where(missing[:, None, :], 0.0, p), axis=0)
    if not HAS_MASK:
        sum_observed = sum_p
    ok, idx = _tile_index(offs_o, offs_k, n_out, n_in)
    tl.store(glp_ptr + idx, sum_p, mask=ok)
    tl.store(gmu_ptr + idx, 2.0 * sc * sum_pz, mask=ok)
    tl.store(gls_ptr + idx, 2.0 * sum_pzz - sum_observed, mask=ok)


def _operands(
    x: Tensor, mu: Tensor, log_sigma: Tensor, log_pi: Tensor, mask: Tensor | None
) -> tuple[tuple[Tensor, ...], int]:
    a, sc = component_terms(log_sigma, log_pi)  # (O, I) each
    mask_i8 = x if mask is None else mask.to(torch.int8).contiguous()  # x: a placeholder pointer, never read
    stride_mu = mu.stride(0) if mu.dim() == 2 else 0
    return (x, mask_i8, mu, a.contiguous(), sc.contiguous(), log_pi.contiguous()), stride_mu


def _grid(*sizes: tuple[int, str]) -> tuple[int, ...]:
    return tuple(triton.cdiv(n, BLOCKS[name]) for n, name in sizes)


class TritonKernels:
    """The Triton kernels behind the :class:`~ugmm_vision.ops._common.UGMMKernels` interface."""

    @staticmethod
    def forward(x: Tensor, mu: Tensor, log_sigma: Tensor, log_pi: Tensor, mask: Tensor | None) -> Tensor:
        _require_triton()
        batch, n_out, n_in = problem_sizes(x, log_sigma)
        operands, stride_mu = _operands(x, mu, log_sigma, log_pi, mask)
        y = x.new_empty(batch, n_out)  # (B, O)
        grid = _grid((batch, "BLOCK_B"), (n_out, "BLOCK_O"))
        _launch(_forward_kernel)[grid](
            *operands,
            y,
            batch,
            n_out,
            n_in,
            stride_mu,
            HAS_MASK=mask is not None,
            num_warps=NUM_WARPS,
            **BLOCKS,
        )
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
        _require_triton()
        batch, n_out, n_in = problem_sizes(x, log_sigma)
        operands, stride_mu = _operands(x, mu, log_sigma, log_pi, mask)
        sizes = {"n_rows": batch, "n_out": n_out, "n_in": n_in, "stride_mu": stride_mu}
        options = {"HAS_MASK": mask is not None, "num_warps": NUM_WARPS, **BLOCKS}
        grad_x = torch.empty_like(x)  # (B, I)
        grid_x = _grid((batch, "BLOCK_B"), (n_in, "BLOCK_K"))
        _launch(_backward_x_kernel)[grid_x](*operands, y, grad_y, grad_x, **sizes, **options)
        grad_lp, grad_mu, grad_ls = (torch.empty_like(log_pi) for _ in range(3))  # (O, I) each
        grid_p = _grid((n_out, "BLOCK_O"), (n_in, "BLOCK_K"))
        _launch(_backward_params_kernel)[grid_p](*operands, y, grad_y, grad_lp, grad_mu, grad_ls, **sizes, **options)
        return grad_x, reduce_tied_mean_grad(grad_mu, mu), grad_ls, grad_lp
