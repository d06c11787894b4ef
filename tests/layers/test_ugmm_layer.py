import pytest
import torch
from torch import nn

from ugmm_vision.functional import ugmm_log_prob_reference
from ugmm_vision.layers import UGMMLayer


@pytest.mark.parametrize("tied", [False, True])
def test_parameters_shapes_and_count(tied):
    layer = UGMMLayer(12, 5, tied_means=tied)
    assert dict((n, tuple(p.shape)) for n, p in layer.named_parameters()) == {
        "mu": (12,) if tied else (5, 12),
        "log_sigma": (5, 12),
        "mix_logits": (5, 12),
    }
    n_params = sum(p.numel() for p in layer.parameters())
    assert n_params == (12 * 5 * 2 + 12 if tied else 3 * 12 * 5)


def test_forward_equals_formula_in_eval_and_gradients_reach_all_parameters():
    torch.manual_seed(0)
    layer = UGMMLayer(6, 4, mixing_dropout=0.5, dtype=torch.float64)
    x = torch.randn(3, 6, dtype=torch.float64)
    layer.eval()
    expected = ugmm_log_prob_reference(x, layer.mu, layer.log_sigma, layer.mix_logits)
    torch.testing.assert_close(layer(x), expected)
    layer.train()
    layer(x).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_dropout_changes_training_output_only():
    torch.manual_seed(0)
    layer = UGMMLayer(20, 3, mixing_dropout=0.5)
    x = torch.randn(4, 20)
    layer.eval()
    assert torch.equal(layer(x), layer(x))
    layer.train()
    assert not torch.equal(layer(x), layer(x))


def test_high_dropout_never_nan():
    torch.manual_seed(0)
    layer = UGMMLayer(3, 64, mixing_dropout=0.999)
    out = layer(torch.randn(8, 3))
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_mask_marginalises_missing_inputs():
    torch.manual_seed(0)
    layer = UGMMLayer(4, 2, init="unit", dtype=torch.float64)
    x = torch.randn(1, 4, dtype=torch.float64)
    mask = torch.tensor([[False, True, True, True]])
    # With inputs 1..3 missing, each neuron's density is Σ_k π_k·[k=0: N(x0)] + π_1 + π_2 + π_3.
    pi = layer.mixing_weights
    gauss0 = torch.distributions.Normal(layer.mu[:, 0], layer.sigma[:, 0]).log_prob(x[0, 0]).exp()
    expected = torch.log(pi[:, 0] * gauss0 + pi[:, 1:].sum(-1))
    torch.testing.assert_close(layer(x, mask)[0], expected)


def test_paper_init_distributions():
    torch.manual_seed(0)
    layer = UGMMLayer(200, 100)
    sigma = layer.sigma.detach()
    assert 0 < sigma.min() and sigma.max() <= 1 and abs(sigma.mean().item() - 0.5) < 0.02
    assert 0 <= layer.mix_logits.min() and layer.mix_logits.max() <= 1
    assert abs(layer.mu.mean().item()) < 0.02 and abs(layer.mu.std().item() - 1) < 0.02
    unit = UGMMLayer(5, 3, init="unit")
    assert torch.equal(unit.sigma, torch.ones(3, 5)) and torch.allclose(unit.mixing_weights, torch.full((3, 5), 0.2))


def test_extra_repr_shows_sizes():
    text = repr(UGMMLayer(7, 3, tied_means=True, mixing_dropout=0.2))
    assert "in_features=7" in text and "out_features=3" in text and "tied_means=True" in text
    assert "mixing_dropout=0.2" in text


def test_device_and_dtype_factory_kwargs():
    layer = UGMMLayer(3, 2, device="cpu", dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in layer.parameters())
    assert isinstance(layer, nn.Module)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_features": 0}, "`in_features` to be a positive integer"),
        ({"out_features": -2}, "`out_features` to be a positive integer"),
        ({"mixing_dropout": 1.5}, r"`mixing_dropout` in \[0, 1\), got 1.5"),
        ({"mixing_dropout": -0.1}, r"`mixing_dropout` in \[0, 1\)"),
        ({"init": "xavier"}, "`init` to be one of"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"in_features": 3, "out_features": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        UGMMLayer(**args)
