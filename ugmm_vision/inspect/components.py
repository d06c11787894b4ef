"""Per-neuron inspection: a uGMM neuron's strongest mixture components and their univariate densities.

Neuron ``j`` of a :class:`~ugmm_vision.layers.UGMMLayer` is a mixture with one Gaussian component per input ``k``
(docs/maths.md §1): weight ``π[j, k] = softmax(mix_logits[j])[k]``, mean ``μ[j, k]`` (``μ[k]`` with tied means) and
standard deviation ``σ[j, k] = exp(log_sigma[j, k])``. The functions here read those parameters (detached, in
float64, without mixing dropout); plotting lives in :mod:`ugmm_vision.report.neuron_plots`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from ugmm_vision.checks import check_positive_int
from ugmm_vision.functional.ugmm import ugmm_component_log_terms
from ugmm_vision.inspect._common import check_index, check_layer, layer_parameters
from ugmm_vision.layers.ugmm import UGMMLayer

__all__ = ["DensityCurves", "NeuronComponents", "neuron_density_curves", "strongest_components"]

_GRID_POINTS = 201
_GRID_SIGMAS = 4.0  # the default grid spans every chosen component's μ ± 4σ


class NeuronComponents(NamedTuple):
    """Mixture components of one neuron, strongest (largest mixing weight) first; every field has shape (k,).

    Attributes:
        index: input index ``k`` of each component (the feature it models), int64.
        weight: mixing weight π.
        mean: mean μ.
        sigma: standard deviation σ.
    """

    index: Tensor
    weight: Tensor
    mean: Tensor
    sigma: Tensor


class DensityCurves(NamedTuple):
    """Weighted component densities of one neuron on a grid, ready to plot.

    Attributes:
        grid: the x values, shape (G,).
        inputs: input index of each curve, shape (n,), int64.
        density: ``π[j, k] · N(grid; μ[j, k], σ[j, k]²)`` for each input ``k`` of ``inputs``, shape (n, G).
    """

    grid: Tensor
    inputs: Tensor
    density: Tensor


def strongest_components(layer: UGMMLayer, neuron: int, k: int = 5) -> NeuronComponents:
    """The ``k`` components of neuron ``neuron`` with the largest mixing weights.

    Ties keep the lower input index first. Values are float64 and detached; mixing dropout is not applied.

    Args:
        layer: the uGMM layer.
        neuron: index ``j`` of the neuron (for a head's class layer, the class index).
        k: how many components; at most the layer's ``in_features`` are returned.

    Returns:
        A :class:`NeuronComponents` of ``min(k, in_features)`` components, largest weight first.

    Example:
        >>> import math
        >>> layer = UGMMLayer(3, 1, dtype=torch.float64)
        >>> with torch.no_grad():
        ...     _ = layer.mu.copy_(torch.tensor([[0.0, 1.0, 2.0]]))
        ...     _ = layer.log_sigma.zero_()
        ...     _ = layer.mix_logits.copy_(torch.tensor([[0.0, 0.0, math.log(2.0)]], dtype=torch.float64))
        >>> top = strongest_components(layer, 0, k=2)
        >>> top.index.tolist(), top.weight.tolist(), top.mean.tolist()
        ([2, 0], [0.5, 0.25], [2.0, 0.0])
    """
    layer = check_layer(layer)
    check_index("neuron", neuron, layer.out_features, "neurons")
    check_positive_int("k", k)
    mu, log_sigma, log_pi = layer_parameters(layer, torch.float64)  # (O, I) each
    weight = log_pi[neuron].exp()  # (I,)
    order = torch.sort(weight, descending=True, stable=True).indices[:k]  # (k,)
    return NeuronComponents(order, weight[order], mu[neuron, order], log_sigma[neuron, order].exp())


def neuron_density_curves(
    layer: UGMMLayer,
    neuron: int,
    inputs: Sequence[int] | Tensor,
    grid: Sequence[float] | Tensor | None = None,
) -> DensityCurves:
    """Each chosen component's weighted univariate density ``π·N(x; μ, σ²)`` of neuron ``neuron`` over a grid.

    A neuron's log-density sums (in log space, via logsumexp) one such term per input, each evaluated at its
    own feature value ``x[k]``; these curves show, per feature, which values the neuron expects and how much
    that feature weighs. The area under curve ``k`` is its mixing weight ``π[j, k]``.

    Args:
        layer: the uGMM layer.
        neuron: index ``j`` of the neuron.
        inputs: input indices ``k`` whose components to evaluate (e.g. ``strongest_components(...).index``).
        grid: x values, shape (G,); None spans ``min(μ − 4σ)`` to ``max(μ + 4σ)`` of the chosen components with
            201 points.

    Returns:
        A :class:`DensityCurves` in float64.

    Example:
        >>> layer = UGMMLayer(2, 1, dtype=torch.float64)
        >>> with torch.no_grad():
        ...     _ = layer.mu.zero_(), layer.log_sigma.zero_(), layer.mix_logits.zero_()
        >>> curves = neuron_density_curves(layer, 0, [1], grid=[0.0])
        >>> round(curves.density.item(), 6)  # 0.5 · N(0; 0, 1) = 0.5 / sqrt(2π)
        0.199471
    """
    layer = check_layer(layer)
    check_index("neuron", neuron, layer.out_features, "neurons")
    index = torch.as_tensor(inputs, dtype=torch.long).reshape(-1)  # (n,)
    if isinstance(inputs, Tensor) and (inputs.is_floating_point() or inputs.dim() > 1):
        raise ValueError(f"Expected `inputs` to be a sequence of integer input indices, got {inputs!r}")
    if index.numel() == 0 or bool(((index < 0) | (index >= layer.in_features)).any()):
        raise ValueError(
            f"Expected `inputs` to be a non-empty sequence of indices in [0, {layer.in_features - 1}], "
            f"got {index.tolist()}"
        )
    mu, log_sigma, log_pi = layer_parameters(layer, torch.float64)
    mean, log_s, log_w = mu[neuron, index], log_sigma[neuron, index], log_pi[neuron, index]  # (n,) each
    if grid is None:
        sigma = log_s.exp()
        lo = (mean - _GRID_SIGMAS * sigma).min().item()
        hi = (mean + _GRID_SIGMAS * sigma).max().item()
        xs = torch.linspace(lo, hi, _GRID_POINTS, dtype=torch.float64)  # (G,)
    else:
        xs = torch.as_tensor(grid, dtype=torch.float64).detach().reshape(-1)  # (G,)
        if xs.numel() == 0 or not bool(torch.isfinite(xs).all()):
            raise ValueError(f"Expected `grid` to be a non-empty sequence of finite values, got {grid!r}")
    rows = xs.unsqueeze(1).expand(-1, index.numel())  # (G, n): each grid value fed to every chosen component
    log_terms = ugmm_component_log_terms(rows, mean, log_s.unsqueeze(0), log_w.unsqueeze(0))  # (G, 1, n)
    log_density = log_terms[:, 0].T  # (n, G)
    return DensityCurves(xs, index, log_density.exp())
