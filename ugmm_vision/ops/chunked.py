"""Chunked PyTorch kernels: the fused algorithm in plain tensor ops, for any device and without a compiler.

The (B, O, I) component terms only ever exist one tile at a time (at most ``TILE_ELEMENTS`` entries). The
forward pass is an online logsumexp over tiles of inputs; the backward pass recomputes each tile's terms
from x and the parameters. Slower than the compiled kernels, but memory-bounded and exact to rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ugmm_vision.ops._common import component_terms, problem_sizes, reduce_tied_mean_grad

__all__ = ["TILE_ELEMENTS", "ChunkedKernels"]

TILE_ELEMENTS = 1 << 20  # entries of one (B, O, I) tile: 4 MiB in float32


def _spans(n: int, step: int) -> list[slice]:
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def _tiles(batch: int, n_out: int, n_in: int) -> tuple[list[tuple[slice, slice]], list[slice]]:
    """The (rows, neurons) blocks of the (B, O) output, and the blocks of inputs each of them is swept over."""
    tile_k = min(n_in, 512, TILE_ELEMENTS)
    tile_b = min(batch, max(1, TILE_ELEMENTS // tile_k))
    tile_o = min(n_out, max(1, TILE_ELEMENTS // (tile_b * tile_k)))
    blocks = [(rows, outs) for rows in _spans(batch, tile_b) for outs in _spans(n_out, tile_o)]
    return blocks, _spans(n_in, tile_k)


def _tile_terms(
    x: Tensor,
    mu: Tensor,
    a: Tensor,
    sc: Tensor,
    log_pi: Tensor,
    mask: Tensor | None,
    rows: slice,
    outs: slice,
    ins: slice,
) -> tuple[Tensor, Tensor]:
    """The component terms t and scaled distances z of one tile, both (b, o, k); x, mask (B, I), the others (O, I)."""
    sc = sc[outs, ins]  # (o, k)
    z = (x[rows, ins].unsqueeze(1) - mu[outs, ins]) * sc  # (b, o, k)
    t = a[outs, ins] - z * z  # (b, o, k)
    if mask is not None:
        missing = mask[rows, ins].unsqueeze(1)  # (b, 1, k)
        t = torch.where(missing, log_pi[outs, ins], t)  # (b, o, k)
        z = z.masked_fill(missing, 0.0)  # (b, o, k)
    return t, z


class ChunkedKernels:
    """Tiled PyTorch kernels behind the :class:`~ugmm_vision.ops._common.UGMMKernels` interface."""

    @staticmethod
    def forward(x: Tensor, mu: Tensor, log_sigma: Tensor, log_pi: Tensor, mask: Tensor | None) -> Tensor:
        batch, n_out, n_in = problem_sizes(x, log_sigma)
        a, sc = component_terms(log_sigma, log_pi)  # (O, I) each
        mu = mu.expand(n_out, n_in)  # (O, I); a view when tied
        blocks, input_blocks = _tiles(batch, n_out, n_in)
        y = x.new_empty(batch, n_out)
        for rows, outs in blocks:
            run_max = torch.full_like(y[rows, outs], float("-inf"))  # (b, o)
            run_sum = torch.zeros_like(y[rows, outs])  # (b, o)
            for ins in input_blocks:
                t, _ = _tile_terms(x, mu, a, sc, log_pi, mask, rows, outs, ins)  # (b, o, k)
                new_max = torch.maximum(run_max, t.amax(dim=-1))  # (b, o)
                # Rows whose components so far are all dropped (−inf) shift by 0, never by −inf (NaN).
                shift = torch.where(torch.isneginf(new_max), 0.0, new_max)  # (b, o)
                tile_sum = torch.exp(t - shift.unsqueeze(-1)).sum(-1)  # (b, o)
                run_sum = run_sum * torch.exp(run_max - shift) + tile_sum
                run_max = new_max
            y[rows, outs] = run_max + torch.log(run_sum)  # (b, o)
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
        batch, n_out, n_in = problem_sizes(x, log_sigma)
        a, sc = component_terms(log_sigma, log_pi)  # (O, I) each
        mu_full = mu.expand(n_out, n_in)  # (O, I)
        blocks, input_blocks = _tiles(batch, n_out, n_in)
        grad_x = torch.zeros_like(x)  # (B, I)
        grad_lp, grad_z, grad_zz, grad_obs = (x.new_zeros(n_out, n_in) for _ in range(4))  # (O, I) each
        for rows, outs in blocks:
            y_t = y[rows, outs].unsqueeze(-1)  # (b, o, 1)
            g_t = grad_y[rows, outs].unsqueeze(-1)  # (b, o, 1)
            for ins in input_blocks:
                t, z = _tile_terms(x, mu_full, a, sc, log_pi, mask, rows, outs, ins)  # (b, o, k)
                p = g_t * torch.exp(t - y_t)  # (b, o, k)
                w = p * z  # (b, o, k)
                grad_x[rows, ins] -= 2.0 * torch.einsum("bok,ok->bk", w, sc[outs, ins])
                grad_lp[outs, ins] += p.sum(0)
                grad_z[outs, ins] += w.sum(0)
                grad_zz[outs, ins] += (w * z).sum(0)
                observed = p if mask is None else p.masked_fill(mask[rows, ins].unsqueeze(1), 0.0)
                grad_obs[outs, ins] += observed.sum(0)
        grad_mu = reduce_tied_mean_grad(2.0 * sc * grad_z, mu)
        grad_ls = 2.0 * grad_zz - grad_obs
        return grad_x, grad_mu, grad_ls, grad_lp
