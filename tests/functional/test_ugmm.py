"""The uGMM log-density against an independent float64 evaluation of docs/maths.md §1."""

import math

import numpy as np
import pytest
import torch

from ugmm_vision.functional import mixing_dropout, ugmm_log_prob


def numpy_ugmm(x, mu, log_sigma, mix_logits, mask=None):
    """Loop-free but independent float64 NumPy evaluation, with its own stable logsumexp."""
    x, mu, log_sigma, mix_logits = (np.asarray(a, dtype=np.float64) for a in (x, mu, log_sigma, mix_logits))
    if mu.ndim == 1:
        mu = np.broadcast_to(mu, log_sigma.shape)
    m = mix_logits.max(axis=1, keepdims=True)
    log_pi = mix_logits - m - np.log(np.exp(mix_logits - m).sum(axis=1, keepdims=True))
    sigma = np.exp(log_sigma)
    gauss = -np.log(sigma) - 0.5 * np.log(2 * np.pi) - (x[:, None, :] - mu) ** 2 / (2 * sigma**2)
    if mask is not None:
        gauss = np.where(np.asarray(mask)[:, None, :], 0.0, gauss)
    terms = log_pi + gauss
    top = terms.max(axis=2, keepdims=True)
    return (top + np.log(np.exp(terms - top).sum(axis=2, keepdims=True)))[..., 0]


def random_params(batch, n_in, n_out, tied, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n_in, generator=g, dtype=dtype) * 2
    mu = torch.randn((n_in,) if tied else (n_out, n_in), generator=g, dtype=dtype)
    log_sigma = torch.randn(n_out, n_in, generator=g, dtype=dtype) * 0.5
    mix_logits = torch.randn(n_out, n_in, generator=g, dtype=dtype)
    mask = torch.rand(batch, n_in, generator=g) < 0.3
    return x, mu, log_sigma, mix_logits, mask


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize(("batch", "n_in", "n_out"), [(1, 1, 1), (5, 7, 3), (16, 33, 10)])
def test_matches_float64_formula(tied, use_mask, batch, n_in, n_out):
    x, mu, log_sigma, mix_logits, mask = random_params(batch, n_in, n_out, tied)
    mask = mask if use_mask else None
    out = ugmm_log_prob(x, mu, log_sigma, mix_logits, mask)
    expected = numpy_ugmm(x, mu, log_sigma, mix_logits, None if mask is None else mask.numpy())
    assert out.shape == (batch, n_out)
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-10)


def test_hand_worked_two_component_mixture():
    # One neuron, inputs (0, 1), means (0, 1), σ = 1, equal weights: both components are N(0; 0, 1) = 1/√(2π).
    x = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    out = ugmm_log_prob(x, torch.tensor([[0.0, 1.0]]).double(), torch.zeros(1, 2).double(), torch.zeros(1, 2).double())
    assert out.item() == pytest.approx(-0.5 * math.log(2 * math.pi), abs=1e-12)


def test_fully_masked_row_is_log_one():
    # Every input missing: log Σ π = log 1 = 0 for every neuron, whatever the means.
    x, mu, log_sigma, mix_logits, _ = random_params(3, 6, 4, tied=False)
    out = ugmm_log_prob(x, mu, log_sigma, mix_logits, torch.ones(3, 6, dtype=torch.bool))
    torch.testing.assert_close(out, torch.zeros(3, 4, dtype=torch.float64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("use_mask", [False, True])
def test_gradcheck_float64(tied, use_mask):
    x, mu, log_sigma, mix_logits, mask = random_params(3, 5, 4, tied)
    inputs = [t.clone().requires_grad_() for t in (x, mu, log_sigma, mix_logits)]
    mask = mask if use_mask else None
    assert torch.autograd.gradcheck(lambda *a: ugmm_log_prob(*a, mask=mask), inputs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_for_extreme_inputs_and_tiny_sigma(dtype):
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]], dtype=dtype, requires_grad=True)
    mu = torch.zeros(2, 3, dtype=dtype, requires_grad=True)
    log_sigma = torch.full((2, 3), -10.0, dtype=dtype, requires_grad=True)
    mix_logits = torch.zeros(2, 3, dtype=dtype, requires_grad=True)
    out = ugmm_log_prob(x, mu, log_sigma, mix_logits)
    assert out.dtype == dtype
    assert torch.isfinite(out).all()
    out.sum().backward()
    for t in (x, mu, log_sigma, mix_logits):
        assert torch.isfinite(t.grad).all()


def test_half_precision_inputs_computed_in_float32():
    x, mu, log_sigma, mix_logits, _ = random_params(4, 8, 3, tied=False, dtype=torch.float32)
    out = ugmm_log_prob(x.bfloat16(), mu, log_sigma, mix_logits)
    assert out.dtype == torch.bfloat16
    expected = numpy_ugmm(x.bfloat16().double(), mu, log_sigma, mix_logits)
    np.testing.assert_allclose(out.double().numpy(), expected, rtol=1e-2)


@pytest.mark.parametrize("p", [0.5, 0.9, 0.999])
def test_mixing_dropout_keeps_a_component_and_no_nan(p):
    torch.manual_seed(0)
    logits = torch.zeros(50, 6, requires_grad=True)
    dropped = mixing_dropout(logits, p)
    assert torch.isfinite(dropped).any(dim=1).all()
    x, mu, log_sigma, _, _ = random_params(4, 6, 50, tied=False, dtype=torch.float32)
    out = ugmm_log_prob(x, mu, log_sigma, dropped)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(logits.grad).all()
    if p >= 0.9:  # with 300 components some must be dropped
        assert torch.isinf(dropped).any()


def test_mixing_dropout_renormalises_survivors():
    torch.manual_seed(1)
    logits = torch.randn(4, 10)
    dropped = mixing_dropout(logits, 0.5)
    pi = dropped.softmax(dim=-1)
    kept = torch.isfinite(dropped)
    torch.testing.assert_close(pi.sum(-1), torch.ones(4))
    expected = torch.where(kept, logits.exp(), torch.zeros(())) / torch.where(kept, logits.exp(), 0).sum(-1, True)
    torch.testing.assert_close(pi, expected)


def test_mixing_dropout_identity_in_eval_and_bad_p():
    logits = torch.randn(3, 4)
    assert mixing_dropout(logits, 0.5, training=False) is logits
    with pytest.raises(ValueError, match="`p` in \\[0, 1\\)"):
        mixing_dropout(logits, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x": torch.zeros(3)}, "`x` of shape \\(B, I\\)"),
        ({"x": torch.zeros(2, 5)}, "`x` with 4 features"),
        ({"mu": torch.zeros(3)}, "`mu` of shape"),
        ({"mix_logits": torch.zeros(3, 5)}, "`mix_logits` of shape"),
        ({"mask": torch.zeros(2, 4)}, "`mask` of dtype torch.bool"),
        ({"mask": torch.zeros(2, 3, dtype=torch.bool)}, "`mask` of shape"),
    ],
)
def test_bad_shapes_name_the_argument(kwargs, match):
    args = {
        "x": torch.zeros(2, 4),
        "mu": torch.zeros(3, 4),
        "log_sigma": torch.zeros(3, 4),
        "mix_logits": torch.zeros(3, 4),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ugmm_log_prob(**args)
