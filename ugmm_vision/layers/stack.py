"""``ugmm_stack``: the stack of uGMM layers that :class:`~ugmm_vision.heads.UGMMHead` and
:class:`~ugmm_vision.generative.UGMMNetwork` are made of, and :func:`stack_outputs`, which runs one."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from torch import Tensor, nn

from ugmm_vision.checks import check_positive_int
from ugmm_vision.layers.ugmm import UGMMLayer

__all__ = ["check_hidden", "per_layer_dropouts", "stack_outputs", "ugmm_stack"]


def check_hidden(hidden: int | Sequence[int]) -> tuple[int, ...]:
    """Hidden widths as a tuple of positive ints (one int is one hidden layer).

    Example:
        >>> check_hidden(8), check_hidden([16, 8])
        ((8,), (16, 8))
    """
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


def ugmm_stack(
    widths: Sequence[int], *, mixing_dropout: float | Sequence[float] = 0.0, **layer_options: Any
) -> nn.ModuleList:
    """uGMM layers ``widths[0] → widths[1] → … → widths[-1]``, one :class:`UGMMLayer` per consecutive pair.

    Args:
        widths: input width then every layer's width (at least two numbers).
        mixing_dropout: component dropout probability, one value for every layer or one per layer.
        **layer_options: the other keyword arguments of :class:`UGMMLayer`, the same for every layer
            (``tied_means``, ``init``, ``backend``, ``sigma_floor``, ``device``, ``dtype``), checked there.

    Example:
        >>> [tuple(layer.log_sigma.shape) for layer in ugmm_stack((5, 10, 1), init="unit")]
        [(10, 5), (1, 10)]
    """
    widths = tuple(widths)
    if len(widths) < 2:
        raise ValueError(f"Expected `widths` to hold an input width and at least one layer width, got {widths}")
    dropouts = per_layer_dropouts(mixing_dropout, len(widths) - 1)
    return nn.ModuleList(
        UGMMLayer(w_in, w_out, mixing_dropout=p, **layer_options)
        for w_in, w_out, p in zip(widths[:-1], widths[1:], dropouts, strict=True)
    )


def stack_outputs(layers: Iterable[nn.Module], x: Tensor, mask: Tensor | None = None) -> list[Tensor]:
    """Every layer's log-densities, first to last; ``mask`` (True = missing input) acts on the first layer only.

    Later layers read log-densities, not observed inputs, so a mask has nothing to act on there.

    Example:
        >>> import torch
        >>> [tuple(t.shape) for t in stack_outputs(ugmm_stack((4, 3, 2)), torch.randn(5, 4))]
        [(5, 3), (5, 2)]
    """
    outputs = []
    for i, layer in enumerate(layers):
        # No mask argument where there is none: a layer swapped in for export (FrozenUGMMLayer) takes x alone.
        x = layer(x, mask) if i == 0 and mask is not None else layer(x)  # (B, width_i)
        outputs.append(x)
    return outputs
