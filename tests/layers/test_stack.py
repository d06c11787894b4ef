"""``ugmm_stack``: the layer stack shared by ``UGMMHead`` and ``UGMMNetwork``, with every layer option."""

import pytest
import torch

from ugmm_vision.generative import UGMMNetwork
from ugmm_vision.heads import UGMMHead
from ugmm_vision.layers import UGMMLayer, stack_outputs, ugmm_stack


def test_stack_passes_every_option_to_every_layer():
    layers = ugmm_stack(
        (5, 4, 3),
        tied_means=True,
        mixing_dropout=(0.2, 0.0),
        init="unit",
        backend="reference",
        sigma_floor=1e-2,
        dtype=torch.float64,
    )
    assert [(layer.in_features, layer.out_features) for layer in layers] == [(5, 4), (4, 3)]
    assert all(isinstance(layer, UGMMLayer) and layer.tied_means for layer in layers)
    assert [layer.mixing_dropout for layer in layers] == [0.2, 0.0]
    assert {(layer.init, layer.backend, layer.sigma_floor) for layer in layers} == {("unit", "reference", 1e-2)}
    assert all(p.dtype == torch.float64 for p in layers.parameters())


def test_head_and_network_are_built_alike():
    head = UGMMHead(5, 3, hidden=(4,), init="paper", sigma_floor=1e-3, norm_layer=None)
    net = UGMMNetwork(5, hidden=(4,), sigma_floor=1e-3)
    assert head.layers[0].log_sigma.shape == net.layers[0].log_sigma.shape == (4, 5)  # the same first layer
    assert {layer.sigma_floor for layer in [*head.layers, *net.layers]} == {1e-3}


def test_stack_outputs_mask_the_first_layer_only():
    torch.manual_seed(0)
    layers = ugmm_stack((3, 2, 1), backend="reference")
    x, mask = torch.randn(4, 3), torch.tensor([[False, True, False]] * 4)
    outputs = stack_outputs(layers, x, mask)
    torch.testing.assert_close(outputs[0], layers[0](x, mask))
    torch.testing.assert_close(outputs[1], layers[1](outputs[0]))


@pytest.mark.parametrize(("widths", "match"), [((4,), "`widths`"), ((4, 0), "`out_features`")])
def test_bad_widths_name_the_argument(widths, match):
    with pytest.raises(ValueError, match=match):
        ugmm_stack(widths)
