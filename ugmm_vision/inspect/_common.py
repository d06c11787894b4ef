"""Argument checks and parameter access shared by the inspection functions."""

from __future__ import annotations

import torch
from torch import Tensor

from ugmm_vision.checks import is_int
from ugmm_vision.layers.ugmm import UGMMLayer

__all__ = ["check_index", "check_layer", "layer_parameters"]


def check_layer(layer: object) -> UGMMLayer:
    if not isinstance(layer, UGMMLayer):
        raise ValueError(f"Expected `layer` to be a UGMMLayer, got {type(layer).__name__}")
    return layer


def check_index(name: str, value: object, size: int, what: str) -> int:
    if not is_int(value) or not 0 <= value < size:
        raise ValueError(f"Expected `{name}` to be an integer in [0, {size - 1}] ({size} {what}), got {value!r}")
    return value


def layer_parameters(layer: UGMMLayer, dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Detached ``(mu, log_sigma, log_pi)``, each (O, I) — tied means broadcast over the neurons.

    ``log_sigma`` is the one ``forward`` uses (floored at the layer's ``sigma_floor`` where it has one);
    ``log_pi`` is the log-softmax of the mixing logits without mixing dropout (evaluation semantics).
    """
    dtype = dtype or torch.promote_types(layer.log_sigma.dtype, torch.float32)
    log_sigma = getattr(layer, "effective_log_sigma", layer.log_sigma).detach().to(dtype)  # (O, I)
    mu = layer.mu.detach().to(dtype).expand_as(log_sigma)  # (I,) or (O, I) -> (O, I)
    log_pi = torch.log_softmax(layer.mix_logits.detach().to(dtype), dim=-1)  # (O, I)
    return mu, log_sigma, log_pi
