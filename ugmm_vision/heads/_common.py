"""Helpers shared by the heads: argument checks and the optional input normalisation."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

NormLayer = Callable[[int], nn.Module]


def check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Expected `{name}` to be a positive integer, got {value!r}")
    return value


def check_hidden(hidden: Sequence[int]) -> tuple[int, ...]:
    if isinstance(hidden, int):
        hidden = (hidden,)
    for i, width in enumerate(hidden):
        check_positive_int(f"hidden[{i}]", width)
    return tuple(hidden)


def per_layer_dropouts(mixing_dropout: float | Sequence[float], n_layers: int) -> tuple[float, ...]:
    """One mixing-dropout probability per layer, from a single value or one value per layer.

    Example:
        >>> per_layer_dropouts(0.2, 3)
        (0.2, 0.2, 0.2)
    """
    if isinstance(mixing_dropout, (int, float)):
        return (float(mixing_dropout),) * n_layers
    dropouts = tuple(float(p) for p in mixing_dropout)
    if len(dropouts) != n_layers:
        raise ValueError(
            f"Expected `mixing_dropout` to be one float or {n_layers} floats (one per layer), got {len(dropouts)}"
        )
    return dropouts


def make_norm(norm_layer: NormLayer | None, in_features: int) -> nn.Module:
    return nn.Identity() if norm_layer is None else norm_layer(in_features)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``module``.

    Example:
        >>> count_parameters(nn.Linear(3, 2))
        8
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
