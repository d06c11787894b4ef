"""Helpers shared by the heads: the optional input normalisation and the parameter count."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

NormLayer = Callable[[int], nn.Module]


def make_norm(norm_layer: NormLayer | None, in_features: int) -> nn.Module:
    return nn.Identity() if norm_layer is None else norm_layer(in_features)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``module``.

    Example:
        >>> count_parameters(nn.Linear(3, 2))
        8
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
