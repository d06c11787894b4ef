"""What a head costs per image: parameters and FLOPs, counted by torch's ``FlopCounterMode``.

The uGMM layer's work is elementwise and exponential, which torch's counter does not know by itself;
:mod:`ugmm_vision.ops.flops` registers a FLOP formula for the fused uGMM op (the documented rule: 8 FLOPs per
(row, neuron, input) component and 2 per output in the forward pass, 14 per component in the backward pass), so
the counter sees a uGMM layer like a Linear layer's ``2·I·O``, inside any model.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ugmm_vision.layers.ugmm import UGMMLayer
from ugmm_vision.ops.flops import UGMM_FLOPS_PER_COMPONENT, UGMM_FLOPS_PER_NEURON, ugmm_forward_flops

__all__ = ["UGMM_FLOPS_PER_COMPONENT", "UGMM_FLOPS_PER_NEURON", "head_flops_per_image", "ugmm_layer_flops"]


def ugmm_layer_flops(batch: int, in_features: int, out_features: int) -> int:
    """Forward FLOPs of one uGMM layer on ``batch`` rows (:func:`ugmm_vision.ops.flops.ugmm_forward_flops`).

    Example:
        >>> ugmm_layer_flops(2, 4, 3)  # 2·3·(8·4 + 2)
        204
    """
    return ugmm_forward_flops(batch, in_features, out_features)


def head_flops_per_image(head: nn.Module, in_features: int) -> int:
    """Forward FLOPs of ``head`` for one feature vector, as torch's ``FlopCounterMode`` counts them.

    uGMM layers are counted through the fused op's registered formula; a layer set to the reference backend is
    switched to the fused one for the count (the rule counts the computation, not how it is carried out).

    Example:
        >>> head_flops_per_image(nn.Linear(4, 3), 4)  # 2·I·O
        24
    """
    layers = [m for m in head.modules() if isinstance(m, UGMMLayer)]
    backends = [layer.backend for layer in layers]
    was_training = head.training
    try:
        head.eval()
        for layer in layers:
            layer.backend = "fused"
        parameter = next(head.parameters(), None)
        x = parameter.new_empty(1, in_features) if parameter is not None else torch.empty(1, in_features)
        nn.init.normal_(x)
        with FlopCounterMode(display=False) as counter:
            head(x)
    finally:
        for layer, backend in zip(layers, backends, strict=True):
            layer.backend = backend
        head.train(was_training)
    return int(counter.get_total_flops())
