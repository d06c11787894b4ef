"""Numerical robustness of the uGMM maths, property-based (hypothesis): finite in, finite out — values and gradients.

"In range" means: inputs and means of any magnitude up to 1e6, σ from the layer's floor (1e-4) up to e^30, mixing
logits up to 1e4 in magnitude with any components dropped (−inf) as long as each neuron keeps one, any missing-input
mask. Both the reference formula and the default backend (``"auto"``: the fused kernels on CPU) are checked.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ugmm_vision.functional import ugmm_log_prob, ugmm_log_prob_reference
from ugmm_vision.layers import SIGMA_FLOOR, UGMMLayer

LOG_FLOOR = math.log(SIGMA_FLOOR)


def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    """float32 values in [low, high], the bounds rounded inwards to float32."""
    low32, high32 = np.float32(low), np.float32(high)
    low32 = low32 if low32 >= low else np.nextafter(low32, np.float32(np.inf))
    high32 = high32 if high32 <= high else np.nextafter(high32, np.float32(-np.inf))
    return st.floats(float(low32), float(high32), allow_nan=False, allow_infinity=False, width=32)


@st.composite
def ugmm_problems(draw, x_max: float = 1e6, log_sigma_range: tuple[float, float] = (LOG_FLOOR, 30.0)):
    """(x, mu, log_sigma, mix_logits, mask) as float64 numpy arrays / a bool mask, with shapes drawn too."""
    batch, n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 4))
    tied = draw(st.booleans())
    x = draw(arrays(np.float64, (batch, n_in), elements=_floats(-x_max, x_max)))
    mu = draw(arrays(np.float64, (n_in,) if tied else (n_out, n_in), elements=_floats(-x_max, x_max)))
    log_sigma = draw(arrays(np.float64, (n_out, n_in), elements=_floats(*log_sigma_range)))
    mix_logits = draw(arrays(np.float64, (n_out, n_in), elements=_floats(-1e4, 1e4)))
    dropped = draw(arrays(np.bool_, (n_out, n_in)))
    dropped[np.arange(n_out), draw(st.integers(0, n_in - 1))] = False  # every neuron keeps a component
    mix_logits[dropped] = -np.inf
    mask = draw(st.none() | arrays(np.bool_, (batch, n_in)))
    return x, mu, log_sigma, mix_logits, mask


def _tensors(problem, dtype, x_dtype=None):
    x, mu, log_sigma, mix_logits, mask = problem
    params = [torch.tensor(a, dtype=dtype, requires_grad=True) for a in (mu, log_sigma, mix_logits)]
    x = torch.tensor(x, dtype=x_dtype or dtype, requires_grad=True)
    return x, params, None if mask is None else torch.from_numpy(mask)


@pytest.mark.parametrize("backend", ["reference", "auto"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@settings(max_examples=85, deadline=None)
@given(problem=ugmm_problems())
def test_outputs_and_gradients_finite_for_inputs_up_to_1e6(backend, dtype, problem):
    """Any finite inputs/means up to 1e6, σ ≥ the floor, dropped components, masks → finite outputs and gradients."""
    x, params, mask = _tensors(problem, dtype)
    out = ugmm_log_prob(x, *params, mask, backend=backend)
    assert out.shape == (x.shape[0], params[1].shape[0]) and out.dtype == dtype
    assert torch.isfinite(out).all(), out
    out.sum().backward()
    for name, t in zip(("x", "mu", "log_sigma", "mix_logits"), (x, *params), strict=True):
        assert torch.isfinite(t.grad).all(), (name, t.grad)


@pytest.mark.parametrize("x_dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_half_precision_inputs_computed_safely(x_dtype, data):
    """float16/bfloat16 inputs (float32 parameters, as under autocast) → finite outputs in that dtype, finite
    parameter gradients; bfloat16 input gradients finite too (float16 ones may overflow to ±Inf, never NaN)."""
    x_max = 6e4 if x_dtype == torch.float16 else 1e6
    x, params, mask = _tensors(data.draw(ugmm_problems(x_max=x_max)), torch.float32, x_dtype)
    for backend in ("reference", "auto"):
        for t in (x, *params):
            t.grad = None
        out = ugmm_log_prob(x, *params, mask, backend=backend)
        assert out.dtype == x_dtype and torch.isfinite(out).all(), out  # saturated at float16's range, never -inf
        out.float().sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in params)
        assert not torch.isnan(x.grad).any()
        if x_dtype == torch.bfloat16:
            assert torch.isfinite(x.grad).all()


@settings(max_examples=40, deadline=None)
@given(problem=ugmm_problems(x_max=10.0, log_sigma_range=(-3.0, 3.0)))
def test_default_backend_agrees_with_the_reference(problem):
    """Moderate random problems → the default (fused) backend equals the reference formula (float64, 1e-9)."""
    x, params, mask = _tensors(problem, torch.float64)
    fused, reference = (ugmm_log_prob(x, *params, mask, backend=b) for b in ("auto", "reference"))
    torch.testing.assert_close(fused, reference, rtol=1e-9, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(
    problem=ugmm_problems(x_max=1e6, log_sigma_range=(-200.0, 5.0)),
    sigma_floor=st.sampled_from([SIGMA_FLOOR, 1e-2, 0.5]),
)
def test_sigma_below_the_floor_is_clamped(problem, sigma_floor):
    """log σ far below the floor (down to −200, σ = 1e-87) in a UGMMLayer → used as the floor; outputs and
    gradients finite."""
    x_np, mu, log_sigma, mix_logits, mask = problem
    layer = UGMMLayer(x_np.shape[1], log_sigma.shape[0], tied_means=mu.ndim == 1, sigma_floor=sigma_floor)
    with torch.no_grad():
        for name, value in (("mu", mu), ("log_sigma", log_sigma), ("mix_logits", mix_logits)):
            getattr(layer, name).copy_(torch.from_numpy(value))
    x = torch.tensor(x_np, dtype=torch.float32)
    mask_t = None if mask is None else torch.from_numpy(mask)
    out = layer(x, mask_t)
    assert layer.sigma.min() >= sigma_floor * (1 - 1e-6)
    floored = layer.log_sigma.detach().clamp(min=math.log(sigma_floor))
    expected = ugmm_log_prob_reference(x, layer.mu.detach(), floored, layer.mix_logits.detach(), mask_t)
    torch.testing.assert_close(out.detach(), expected, rtol=1e-5, atol=1e-3)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_parameter_below_the_floor_can_climb_back():
    """σ parameter stuck below the floor → a loss that wants a wider σ moves it up; one that wants narrower does not."""
    layer = UGMMLayer(1, 1, init="unit")  # σ floor 1e-4 by default
    with torch.no_grad():
        layer.log_sigma.fill_(-20.0)
        layer.mu.fill_(0.0)  # not a random draw: a μ near x = 1 gave too small a step to move −20 in float32
    optimizer = torch.optim.SGD(layer.parameters(), lr=1e-12)
    (-layer(torch.tensor([[1.0]]))).sum().backward()  # x = 1, μ = 0: far at σ = 1e-4, wants wider
    assert layer.log_sigma.grad.item() < 0
    optimizer.step()
    assert layer.log_sigma.item() > -20.0
    layer.zero_grad()
    with torch.no_grad():
        layer.log_sigma.fill_(-20.0)
    (-layer(layer.mu.detach().view(1, 1))).sum().backward()  # x = μ: a narrower σ raises the density
    assert layer.log_sigma.grad.item() == 0.0  # blocked: pushing further below the floor would change nothing


def test_zero_floor_disables_the_clamp():
    """sigma_floor=0 → the raw σ is used (here 1e-9): no floor unless asked for."""
    layer = UGMMLayer(2, 1, sigma_floor=0.0)
    with torch.no_grad():
        layer.log_sigma.fill_(math.log(1e-9))
    assert layer.sigma.max().item() == pytest.approx(1e-9)
    assert "sigma_floor=0.0" in repr(layer)


def test_the_properties_run_at_least_500_examples():
    """The hypothesis tests above ask for ≥ 500 examples in all (max_examples × parametrized cases)."""
    total = 0
    for test in [v for k, v in globals().items() if k.startswith("test_") and hasattr(v, "hypothesis")]:
        cases = math.prod(len(mark.args[1]) for mark in getattr(test, "pytestmark", []) if mark.name == "parametrize")
        total += test._hypothesis_internal_use_settings.max_examples * cases
    assert total >= 500, total
