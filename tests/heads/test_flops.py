"""torch's ``FlopCounterMode`` counts uGMM layers by the registered formula, checked on hand-worked layers."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ugmm_vision.heads import LinearHead, UGMMHead, head_flops_per_image
from ugmm_vision.layers import UGMMLayer


def test_forward_and_backward_of_a_small_layer_by_hand():
    # B = 2 rows, I = 4 inputs, O = 3 neurons: 24 components.
    # forward: 24 components x 8 FLOPs + 6 outputs x 2 FLOPs = 192 + 12 = 204
    # backward: 24 components x 14 FLOPs = 336
    layer = UGMMLayer(4, 3, backend="fused")
    x = torch.randn(2, 4, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        y = layer(x)
    assert counter.get_total_flops() == 204
    with FlopCounterMode(display=False) as counter:
        layer(x).sum().backward()
    assert counter.get_total_flops() == 204 + 336
    assert y.shape == (2, 3)


def test_whole_model_count_adds_the_linear_layers_and_the_ugmm_head():
    # A Linear 5 -> 4 (2*5*4 = 40 FLOPs per row) feeding a uGMM layer 4 -> 3 (3*(8*4 + 2) = 102 per row), 2 rows.
    model = nn.Sequential(nn.Linear(5, 4), UGMMLayer(4, 3))
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(2, 5))
    assert counter.get_total_flops() == 2 * (40 + 102)


def test_head_flops_per_image_uses_the_counter_for_every_backend():
    # 4 -> 3 hidden (3*(8*4 + 2) = 102) -> 2 classes (2*(8*3 + 2) = 52): 154; LayerNorm is not counted by torch.
    for backend in ("auto", "fused", "reference"):
        head = UGMMHead(4, 2, hidden=(3,), backend=backend)
        assert head_flops_per_image(head, 4) == 102 + 52
        assert all(layer.backend == backend for layer in head.layers)  # restored after counting
    assert head_flops_per_image(LinearHead(4, 3), 4) == 24
