"""Chunked PyTorch kernels: the fused algorithm in plain tensor ops, for any device and without a compiler.

The (B, O, I) component terms only ever exist one tile at a time (at most ``TILE_ELEMENTS`` entries). The
forward pass is an online logsumexp over tiles of inputs; the backward pass recomputes each tile's terms
from x and the parameters. Slower than the compiled kernels, but memory-bounded and exact to rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ugmm_vision.ops._common import component_terms, reduce_tied_mean_grad

__all__ = ["TILE_ELEMENTS", "ChunkedKernels"]

TILE_ELEMENTS = 1 << 20  # entries of one (B, O, I) tile: 4 MiB in float32


def _tile_sizes(batch: int, n_out: int, n_in: int) -> tuple[int, int, int]:
    tile_k = min(n_in, 512, TILE_ELEMENTS)
    tile_b = min(batch, max(1, TILE_ELEMENTS // tile_k))
    tile_o = min(n_out, max(1, TILE_ELEMENTS // (tile_b * tile_k)))
    return tile_b, tile_o, tile_k


def _tile_terms(
    x: Tensor, mu: Tensor, a: Tensor, sc: Tensor, log_pi: Tensor, mask: Tensor | None
) -> tuple[Tensor, Tensor]:
    """The component terms t and scaled distances z of one tile; x, mask (b, k), the others (o, k)."""
    z = (x.unsqueeze(1) - mu) * sc  # (b, o, k)
    t = a - z * z  # (b, o, k)
    if mask is not None:
        missing = mask.unsqueeze(1)  # (b, 1, k)
        t = torch.where(missing, log_pi, t)  # (b, o, k)
        z = z.masked_fill(missing, 0.0)  # (b, o, k)
    return t, z


class ChunkedKernels:
    """Tiled PyTorch kernels behind the :class:`~ugmm_vision.ops._common.UGMMKernels` interface."""

    @staticmethod
    def forward(x: Tensor, mu: Tensor, log_sigma: Tensor, log_pi: Tensor, mask: Tensor | None) -> Tensor:
        batch, n_in = x.shape
        n_out = log_sigma.shape[0]
        a, sc = component_terms(log_sigma, log_pi)  # (O, I) each
        mu = mu.expand(n_out, n_in)  # (O, I); a view when tied
        tile_b, tile_o, tile_k = _tile_sizes(batch, n_out, n_in)
        y = x.new_empty(batch, n_out)
        for b0 in range(0, batch, tile_b):
            b1 = min(b0 + tile_b, batch)
            for o0 in range(0, n_out, tile_o):
                o1 = min(o0 + tile_o, n_out)
                run_max = x.new_full((b1 - b0, o1 - o0), float("-inf"))  # (b, o)
                run_sum = x.new_zeros((b1 - b0, o1 - o0))  # (b, o)
                for k0 in range(0, n_in, tile_k):
                    k1 = min(k0 + tile_k, n_in)
                    t, _ = _tile_terms(
                        x[b0:b1, k0:k1],
                        mu[o0:o1, k0:k1],
                        a[o0:o1, k0:k1],
                        sc[o0:o1, k0:k1],
                        log_pi[o0:o1, k0:k1],
                        None if mask is None else mask[b0:b1, k0:k1],
                    )
                    new_max = torch.maximum(run_max, t.amax(dim=-1))  # (b, o)
                    # Rows whose components so far are all dropped (−inf) shift by 0, never by −inf (NaN).
                    shift = torch.where(torch.isneginf(new_max), 0.0, new_max)  # (b, o)
                    tile_sum = torch.exp(t - shift.unsqueeze(-1)).sum(-1)  # (b, o)
                    run_sum = run_sum * torch.exp(run_max - shift) + tile_sum
                    run_max = new_max
                y[b0:b1, o0:o1] = run_max + torch.log(run_sum)  # (b, o)
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
        batch, n_in = x.shape
        n_out = log_sigma.shape[0]
        a, sc = component_terms(log_sigma, log_pi)  # (O, I) each
        mu_full = mu.expand(n_out, n_in)  # (O, I)
        tile_b, tile_o, tile_k = _tile_sizes(batch, n_out, n_in)
        grad_x = torch.zeros_like(x)  # (B, I)
        grad_lp, grad_z, grad_zz, grad_obs = (x.new_zeros(n_out, n_in) for _ in range(4))  # (O, I) each
        for b0 in range(0, batch, tile_b):
            b1 = min(b0 + tile_b, batch)
            for o0 in range(0, n_out, tile_o):
                o1 = min(o0 + tile_o, n_out)
                y_t = y[b0:b1, o0:o1].unsqueeze(-1)  # (b, o, 1)
                g_t = grad_y[b0:b1, o0:o1].unsqueeze(-1)  # (b, o, 1)
                for k0 in range(0, n_in, tile_k):
                    k1 = min(k0 + tile_k, n_in)
                    tile_mask = None if mask is None else mask[b0:b1, k0:k1]
                    t, z = _tile_terms(
                        x[b0:b1, k0:k1],
                        mu_full[o0:o1, k0:k1],
                        a[o0:o1, k0:k1],
                        sc[o0:o1, k0:k1],
                        log_pi[o0:o1, k0:k1],
                        tile_mask,
                    )
                    p = g_t * torch.exp(t - y_t)  # (b, o, k)
                    w = p * z  # (b, o, k)
                    grad_x[b0:b1, k0:k1] -= 2.0 * torch.einsum("bok,ok->bk", w, sc[o0:o1, k0:k1])
                    grad_lp[o0:o1, k0:k1] += p.sum(0)
                    grad_z[o0:o1, k0:k1] += w.sum(0)
                    grad_zz[o0:o1, k0:k1] += (w * z).sum(0)
                    observed = p if tile_mask is None else p.masked_fill(tile_mask.unsqueeze(1), 0.0)
                    grad_obs[o0:o1, k0:k1] += observed.sum(0)
        grad_mu = reduce_tied_mean_grad(2.0 * sc * grad_z, mu)
        grad_ls = 2.0 * grad_zz - grad_obs
        return grad_x, grad_mu, grad_ls, grad_lp
