"""Shared helpers of the fused-kernel tests: random uGMM arguments and the float64 reference as the oracle."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ugmm_vision.functional import ugmm_log_prob_reference

# (tied means, missing-input mask, mixing dropout) combinations exercised by the parametrised tests.
FEATURES = [
    (False, False, False),
    (True, False, False),
    (False, True, False),
    (False, False, True),
    (True, True, True),
]
FEATURE_IDS = ["plain", "tied", "mask", "dropout", "tied-mask-dropout"]

LogProb = Callable[..., Tensor]


def make_args(
    batch: int,
    n_in: int,
    n_out: int,
    *,
    tied: bool = False,
    use_mask: bool = False,
    dropout: bool = False,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> tuple[list[Tensor], Tensor | None]:
    """(x, mu, log_sigma, mix_logits) in ``dtype`` and an optional mask; dropout sets about half the logits to
    −inf, keeping one finite logit per neuron, as :func:`~ugmm_vision.functional.mixing_dropout` does."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n_in, generator=g, dtype=torch.float64) * 2
    mu = torch.randn((n_in,) if tied else (n_out, n_in), generator=g, dtype=torch.float64)
    log_sigma = torch.randn(n_out, n_in, generator=g, dtype=torch.float64) * 0.5
    mix_logits = torch.randn(n_out, n_in, generator=g, dtype=torch.float64)
    if dropout:
        drop = torch.rand(n_out, n_in, generator=g) < 0.5
        drop[torch.arange(n_out), torch.randint(n_in, (n_out,), generator=g)] = False
        mix_logits = mix_logits.masked_fill(drop, float("-inf"))
    mask = torch.rand(batch, n_in, generator=g) < 0.3 if use_mask else None
    return [t.to(dtype) for t in (x, mu, log_sigma, mix_logits)], mask


def output_and_grads(fn: LogProb, args: list[Tensor], mask: Tensor | None, grad_y: Tensor) -> list[Tensor]:
    """[y, ∂x, ∂mu, ∂log_sigma, ∂mix_logits] of ``fn`` at ``args`` for the upstream gradient ``grad_y``."""
    leaves = [a.detach().clone().requires_grad_() for a in args]
    y = fn(*leaves, mask)
    grads = torch.autograd.grad(y, leaves, grad_y.to(y.dtype))
    return [y.detach(), *grads]


def reference_float64(args: list[Tensor], mask: Tensor | None, grad_y: Tensor) -> list[Tensor]:
    """The oracle: the materialising reference evaluated in float64 on the same (rounded) argument values."""
    args64 = [a.detach().cpu().double() for a in args]
    mask = None if mask is None else mask.cpu()
    return output_and_grads(ugmm_log_prob_reference, args64, mask, grad_y.cpu().double())


def assert_close_scaled(actual: Tensor, expected: Tensor, rtol: float) -> None:
    """|actual − expected| ≤ rtol·|expected| + rtol·max|expected| entry by entry: relative error measured
    against each entry and against the tensor's scale (so entries that cancel to ~0 do not demand the
    impossible)."""
    expected = expected.double()
    scale = expected.abs().max().item() if expected.numel() else 0.0
    torch.testing.assert_close(actual.detach().cpu().double(), expected, rtol=rtol, atol=rtol * scale)
