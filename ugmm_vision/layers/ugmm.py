"""``UGMMLayer``: a thin ``nn.Module`` over :func:`ugmm_vision.functional.ugmm_log_prob`."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from ugmm_vision.checks import check_choice, check_positive_int, is_real
from ugmm_vision.functional.backend import UGMMBackend, check_backend
from ugmm_vision.functional.ugmm import clamp_log_sigma, mixing_dropout, ugmm_log_prob

__all__ = ["SIGMA_FLOOR", "UGMMInit", "UGMMLayer", "clamp_to_finite_range", "finite_input_bound"]

UGMMInit = Literal["paper", "unit"]
_SIGMA_INIT_FLOOR = 1e-3  # keeps log U(0, 1) finite: σ is drawn from U(1e-3, 1) under the paper's init
SIGMA_FLOOR = 1e-4
"""Default smallest σ a :class:`UGMMLayer` uses: inputs up to 1e6 then give squared z-scores below 1e21, finite in
float32 with room to spare, and no component collapses onto a single input value."""


def finite_input_bound(dtype: torch.dtype, sigma_floor: float = SIGMA_FLOOR) -> float:
    """Largest input magnitude a :class:`UGMMLayer` computes with as given: ``sqrt(max) · σ_floor · 1e-3``.

    The squared z-score ``((x − μ) / σ)²`` overflows float32 at ``|x − μ| / σ ≈ 1.8e19`` (the output becomes −inf
    and the gradients NaN); at this bound it stays below ``max · 1e-6``, so sums over a batch stay finite too.
    Computation is in float32 at least (half inputs are promoted), hence its bound for them.

    Example:
        >>> f"{finite_input_bound(torch.float32):.2e}", f"{finite_input_bound(torch.float64):.2e}"
        ('1.84e+12', '1.34e+147')
    """
    compute = torch.promote_types(dtype, torch.float32)
    return math.sqrt(torch.finfo(compute).max) * sigma_floor * 1e-3


def clamp_to_finite_range(x: Tensor, sigma_floor: float = SIGMA_FLOOR) -> Tensor:
    """``x`` with finite entries beyond ±:func:`finite_input_bound` clamped to it; NaN and ±inf kept as they are.

    Far beyond every mean a uGMM neuron's log-density is astronomically low either way (below −1e29 at the bound
    with σ = 1): clamping keeps it, and every gradient, finite, where ``|x| ≥ 1e20`` otherwise gave −inf and NaN
    gradients. Such inputs then all get the log-density of the bound, and no gradient flows back to them. NaN and
    ±inf are kept: a NaN input still gives NaN (it is not hidden), an infinite one a component of density 0.

    Example:
        >>> clamp_to_finite_range(torch.tensor([1.0, -1e30, float("inf")]))
        tensor([ 1.0000e+00, -1.8447e+12,         inf])
    """
    bound = finite_input_bound(x.dtype, sigma_floor)
    return torch.where(x.isinf(), x, x.clamp(-bound, bound))


class UGMMLayer(nn.Module):
    """A layer of univariate-Gaussian-mixture neurons (arXiv 2509.07569).

    Neuron ``j`` is a mixture with one Gaussian component per input ``k`` (mean ``mu[j, k]``, standard
    deviation ``exp(log_sigma[j, k])``, weight ``softmax(mix_logits[j])[k]``); its output is the
    log-density of the input vector under that mixture. See docs/maths.md §1 for the formula.

    Args:
        in_features: number of inputs I (one mixture component per input).
        out_features: number of neurons O.
        tied_means: share one mean per input across all neurons (``mu`` of shape (I,)), cutting the parameters
            from 3·I·O to 2·I·O + I.
        mixing_dropout: probability of dropping each mixture component during training; the surviving weights
            renormalise and no neuron loses all its components.
        init: ``"paper"`` — the reference code's μ ~ N(0, 1), σ ~ U(0, 1), mix_logits ~ U(0, 1);
            ``"unit"`` — μ ~ N(0, 1), σ = 1 and equal mixing weights, a gentler start for normalised features.
        backend: how the log-densities are computed (see :func:`~ugmm_vision.functional.ugmm_log_prob`):
            ``"auto"`` — fused memory-bounded kernels where the device has them; ``"fused"``; ``"reference"``.
        sigma_floor: smallest σ used in ``forward`` (default :data:`SIGMA_FLOOR` = 1e-4; 0 for none).
            ``log_sigma`` entries below ``log(sigma_floor)`` are used as the floor by
            :func:`~ugmm_vision.functional.clamp_log_sigma`, whose gradient still lets them climb back; this
            stops a component collapsing onto one value (σ → 0, density → ∞) and keeps every output and
            gradient finite for inputs up to 1e6 in magnitude. Finite inputs beyond :func:`finite_input_bound`
            (about 1.8e12 in float32 with the default floor; 0 counts as the default here) are clamped to it
            (:func:`clamp_to_finite_range`), so every finite input gives a finite output and finite gradients.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: (B, I) and optionally a boolean ``mask`` (B, I), True where an input is missing.
        - Output: (B, O) log-densities.

    Example:
        >>> layer = UGMMLayer(4, 3)
        >>> layer(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        tied_means: bool = False,
        mixing_dropout: float = 0.0,
        init: UGMMInit = "paper",
        backend: UGMMBackend = "auto",
        sigma_floor: float = SIGMA_FLOOR,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        check_positive_int("out_features", out_features)
        if not 0.0 <= mixing_dropout < 1.0:
            raise ValueError(f"Expected `mixing_dropout` in [0, 1), got {mixing_dropout}")
        check_choice("init", init, ("paper", "unit"))
        check_backend(backend)
        if not is_real(sigma_floor) or not 0 <= sigma_floor < math.inf:
            raise ValueError(f"Expected `sigma_floor` to be a finite number ≥ 0, got {sigma_floor!r}")
        factory = {"device": device, "dtype": dtype}
        self.in_features = in_features
        self.out_features = out_features
        self.tied_means = tied_means
        self.mixing_dropout = mixing_dropout
        self.init = init
        self.backend = backend
        self.sigma_floor = float(sigma_floor)
        mu_shape = (in_features,) if tied_means else (out_features, in_features)
        self.mu = nn.Parameter(torch.empty(mu_shape, **factory))
        self.log_sigma = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.mix_logits = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw the parameters from the initialisation named by ``init``."""
        with torch.no_grad():
            nn.init.normal_(self.mu)
            if self.init == "paper":
                self.log_sigma.uniform_(_SIGMA_INIT_FLOOR, 1.0).log_()
                self.mix_logits.uniform_(0.0, 1.0)
            else:
                self.log_sigma.zero_()
                self.mix_logits.zero_()

    @property
    def effective_log_sigma(self) -> Tensor:
        """``log_sigma`` as ``forward`` uses it: floored at ``log(sigma_floor)``, shape (O, I)."""
        if self.sigma_floor == 0.0:
            return self.log_sigma
        return clamp_log_sigma(self.log_sigma, math.log(self.sigma_floor))

    @property
    def sigma(self) -> Tensor:
        """Standard deviations σ = exp(log_sigma) as ``forward`` uses them (at least ``sigma_floor``), shape (O, I)."""
        return self.effective_log_sigma.exp()

    @property
    def mixing_weights(self) -> Tensor:
        """Mixing weights π = softmax(mix_logits) per neuron, shape (O, I)."""
        return self.mix_logits.softmax(dim=-1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        mix_logits = mixing_dropout(self.mix_logits, self.mixing_dropout, self.training)
        x = clamp_to_finite_range(x, self.sigma_floor or SIGMA_FLOOR)  # (B, I)
        return ugmm_log_prob(x, self.mu, self.effective_log_sigma, mix_logits, mask, backend=self.backend)

    def extra_repr(self) -> str:
        parts = [f"in_features={self.in_features}", f"out_features={self.out_features}"]
        if self.tied_means:
            parts.append("tied_means=True")
        if self.mixing_dropout:
            parts.append(f"mixing_dropout={self.mixing_dropout}")
        parts.append(f"init={self.init!r}")
        if self.backend != "auto":
            parts.append(f"backend={self.backend!r}")
        if self.sigma_floor != SIGMA_FLOOR:
            parts.append(f"sigma_floor={self.sigma_floor}")
        return ", ".join(parts)
