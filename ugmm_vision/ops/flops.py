"""FLOP formulas of the fused uGMM ops, registered with torch's ``FlopCounterMode``.

torch's counter knows matrix products and convolutions; with these formulas registered (importing
:mod:`ugmm_vision.ops` does it) it also counts the uGMM custom ops, so ``FlopCounterMode`` reports whole-model
FLOPs of a network with uGMM heads, forward and backward. Elementwise work is counted as torch's counter counts a
matrix product's: one multiply or add is one FLOP, and an exponential is counted as one FLOP.

The rule follows the fused kernels (:mod:`ugmm_vision.ops._common`), per component (b, j, k) — one (row, neuron,
input) triple — and per output (b, j):

====================================  =====
forward, per component (b, j, k)      FLOPs
====================================  =====
``t = x − μ``                         1
``u = t · (1/σ)``                     1
``v = u · u``                         1
``w = c[j,k] − ½·v`` (c = log π − log σ − ½·log 2π, precomputed per layer)   2
``e = exp(w − m)`` (exponential counted as one FLOP)   2
``s += e``                            1
**total**                             **8**
per neuron: ``log s + m``             2
====================================  =====

=====================================================================  =====
backward (recomputes the terms), per component                         FLOPs
=====================================================================  =====
recompute ``z`` and ``t``                                              4
``p = g · exp(t − y)``                                                 3
``Σ_b p``, ``w = p·z``, ``Σ_b w``, ``Σ_b w·z``                          5
``∂x −= 2·sc·w`` (2·sc precomputed)                                    2
**total**                                                              **14**
=====================================================================  =====

Per-layer work of size O·I (``log_softmax`` of the mixing logits, ``a``, ``sc``, the final scaling of the
parameter gradients) is not counted, as torch's counter does not count a Linear layer's bias.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import register_flop_formula

from ugmm_vision.ops import autograd  # noqa: F401  (defines the ops registered below)

__all__ = [
    "UGMM_BACKWARD_FLOPS_PER_COMPONENT",
    "UGMM_FLOPS_PER_COMPONENT",
    "UGMM_FLOPS_PER_NEURON",
    "ugmm_backward_flops",
    "ugmm_forward_flops",
]

UGMM_FLOPS_PER_COMPONENT = 8
UGMM_FLOPS_PER_NEURON = 2
UGMM_BACKWARD_FLOPS_PER_COMPONENT = 14


def ugmm_forward_flops(batch: int, in_features: int, out_features: int) -> int:
    """Forward FLOPs of one uGMM layer on ``batch`` rows, by the rule in this module's docstring.

    Example:
        >>> ugmm_forward_flops(2, 4, 3)  # 2·3·(8·4 + 2)
        204
    """
    return batch * out_features * (UGMM_FLOPS_PER_COMPONENT * in_features + UGMM_FLOPS_PER_NEURON)


def ugmm_backward_flops(batch: int, in_features: int, out_features: int) -> int:
    """Backward FLOPs of one uGMM layer on ``batch`` rows, by the rule in this module's docstring.

    Example:
        >>> ugmm_backward_flops(2, 4, 3)  # 14·2·3·4
        336
    """
    return UGMM_BACKWARD_FLOPS_PER_COMPONENT * batch * out_features * in_features


@register_flop_formula(torch.ops.ugmm_vision.fused_log_prob)
def _forward_formula(x_shape, mu_shape, log_sigma_shape, *args, out_shape=None, **kwargs) -> int:
    batch, n_in = x_shape
    return ugmm_forward_flops(batch, n_in, log_sigma_shape[0])


@register_flop_formula(torch.ops.ugmm_vision.fused_log_prob_backward)
def _backward_formula(x_shape, mu_shape, log_sigma_shape, *args, out_shape=None, **kwargs) -> int:
    batch, n_in = x_shape
    return ugmm_backward_flops(batch, n_in, log_sigma_shape[0])
