"""The head contract: which heads are density heads, and what every head gives for a batch of features."""

import pytest
import torch

from ugmm_vision.functional import hidden_density_sum
from ugmm_vision.generative import UGMMNetwork
from ugmm_vision.heads import (
    DensityHead,
    LinearHead,
    MLPHead,
    ParamMatchedMLPHead,
    UGMMHead,
    head_outputs,
    is_density_head,
)
from ugmm_vision.inspect import layer_inputs


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (UGMMHead(6, 3), True),
        (UGMMHead(6, 3, hidden=(4,), norm_layer=None), True),
        (LinearHead(6, 3), False),
        (MLPHead(6, 3, hidden=(4,)), False),
        (ParamMatchedMLPHead(128, 10, match_hidden=(32,)), False),
        (UGMMNetwork(6, hidden=(4,)), False),  # a density model over its inputs, not a head with classes
        (None, False),
    ],
)
def test_is_density_head(head, expected):
    assert is_density_head(head) is expected
    assert isinstance(head, DensityHead) is expected


def test_head_outputs_match_forward_and_hidden_layers():
    torch.manual_seed(0)
    x = torch.randn(5, 6)
    head = UGMMHead(6, 3, hidden=(4, 2)).eval()
    out = head_outputs(head, x)
    hidden, classes = head.forward_hidden(x)[:-1], head.forward_hidden(x)[-1]
    torch.testing.assert_close(out["logits"], head(x))
    torch.testing.assert_close(out["logits"], classes)
    torch.testing.assert_close(out["hidden_density"], hidden_density_sum(hidden))
    assert set(head_outputs(UGMMHead(6, 3), x)) == {"logits"}  # no hidden layer: no hidden density
    linear = LinearHead(6, 3)
    assert set(head_outputs(linear, x)) == {"logits"}
    torch.testing.assert_close(head_outputs(linear, x)["logits"], linear(x))


def test_layer_inputs_ask_for_a_density_head():
    with pytest.raises(ValueError, match="`head` to be a DensityHead"):
        layer_inputs(LinearHead(6, 3), torch.randn(2, 6))
