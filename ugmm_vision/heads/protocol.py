"""What a density head is, for the code that asks: the :class:`DensityHead` protocol and :data:`HeadFactory`.

Several packages treat a uGMM head differently from a linear one: its logits are class log-densities (the report's
density OOD scores, the prediction writer's ``density`` column), its hidden layers give a hidden log-density sum
(``predict_step``), and its layers can be looked into (:mod:`ugmm_vision.inspect`). They ask
:func:`is_density_head`, which checks the contract below, rather than the head's class or a single attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from torch import Tensor, nn

from ugmm_vision.functional import hidden_density_sum

__all__ = ["DensityHead", "HeadFactory", "head_outputs", "is_density_head"]

HeadFactory = Callable[[int, int], nn.Module]
"""Builds a head from ``(in_features, num_classes)``; how configs pass a head before the sizes are known."""


@runtime_checkable
class DensityHead(Protocol):
    """A head whose outputs are log-densities: one per class, computed by a stack of density layers.

    :class:`~ugmm_vision.heads.UGMMHead` implements it.

    Attributes:
        in_features: width F of the features it takes.
        num_classes: number of classes C.
        norm: what the features go through before the first layer (``nn.Identity`` for nothing).
        layers: the density layers, first to class layer; layer ``i + 1`` reads layer ``i``'s log-densities.
    """

    in_features: int
    num_classes: int
    norm: nn.Module
    layers: nn.ModuleList

    def __call__(self, features: Tensor) -> Tensor:
        """Class log-densities (B, C), used as logits, for features (B, F)."""
        ...

    def forward_hidden(self, features: Tensor) -> list[Tensor]:
        """Every layer's log-densities, first layer to class layer: one (B, width) tensor per layer."""
        ...


def is_density_head(head: object) -> bool:
    """Whether ``head`` implements :class:`DensityHead` (its logits are class log-densities).

    Example:
        >>> from ugmm_vision.heads import LinearHead, UGMMHead
        >>> is_density_head(UGMMHead(4, 3)), is_density_head(LinearHead(4, 3)), is_density_head(None)
        (True, False, False)
    """
    return isinstance(head, nn.Module) and isinstance(head, DensityHead)


def head_outputs(head: nn.Module, features: Tensor) -> dict[str, Tensor]:
    """``{"logits": (B, C)}`` from any head, plus ``"hidden_density"`` (B,) from a density head with hidden layers.

    The hidden log-density sum (:func:`~ugmm_vision.functional.hidden_density_sum`) is an OOD score; one pass
    through the head gives it with the logits. What ``ImageClassifier.predict_step`` and the uncertainty methods
    return for a batch of features.

    Example:
        >>> import torch
        >>> from ugmm_vision.heads import LinearHead, UGMMHead
        >>> x = torch.randn(2, 4)
        >>> sorted(head_outputs(UGMMHead(4, 3, hidden=(5,)), x)), sorted(head_outputs(LinearHead(4, 3), x))
        (['hidden_density', 'logits'], ['logits'])
    """
    if not is_density_head(head):
        return {"logits": head(features)}
    layer_outputs = head.forward_hidden(features)
    out = {"logits": layer_outputs[-1]}
    if len(layer_outputs) > 1:
        out["hidden_density"] = hidden_density_sum(layer_outputs[:-1])  # (B,)
    return out
