"""Metric inputs outside each metric's contract (second pass, issue 17): refused naming the argument, never NaN.

Before this pass: probability rows summing to 1.6 were scored by ECE, Brier and the class-wise and adaptive
ECE; the NLL of no samples was NaN; a +inf logit gave NaN NLL and MSP; a row of only −inf gave MSP NaN and an
entropy of 0 ("certain"); a UGMMLayer fed |x| ≥ 1e20 returned −inf with NaN gradients. Verdict per row: fixed.
"""

import math

import pytest
import torch

from ugmm_vision.functional import (
    adaptive_calibration_error,
    brier_score,
    classwise_calibration_error,
    energy_score,
    expected_calibration_error,
    max_softmax_probability,
    negative_entropy,
    negative_log_likelihood,
    reliability_diagram_data,
)
from ugmm_vision.layers import UGMMLayer
from ugmm_vision.layers.ugmm import finite_input_bound
from ugmm_vision.metrics import AdaptiveCalibrationError, BrierScore, ClasswiseCalibrationError

PROB_METRICS = {
    "ece": lambda p, t: expected_calibration_error(p, t, 5),
    "brier": brier_score,
    "classwise-ece": lambda p, t: classwise_calibration_error(p, t, 5),
    "adaptive-ece": lambda p, t: adaptive_calibration_error(p, t, 5),
    "reliability-diagram": lambda p, t: reliability_diagram_data(p, t, 5),
    "BrierScore": lambda p, t: BrierScore().update(p, t),
    "AdaptiveCalibrationError": lambda p, t: AdaptiveCalibrationError(n_bins=5).update(p, t),
    "ClasswiseCalibrationError": lambda p, t: ClasswiseCalibrationError(2, n_bins=5).update(p, t),
}


@pytest.mark.parametrize("metric", list(PROB_METRICS.values()), ids=list(PROB_METRICS))
def test_probability_rows_not_summing_to_one(metric):
    """Probability rows that do not sum to 1 ((1.4, 0.2) → 1.6, or (0.3, 0.3) → 0.6) → ValueError naming `probs`,
    the number of such rows and an example sum."""
    probs = torch.tensor([[0.5, 0.5], [1.4, 0.2], [0.3, 0.3]]).clamp(max=1.0)  # [1.0, 0.2] sums to 1.2
    with pytest.raises(ValueError, match=r"`probs` rows that sum to 1.*2 of 3 rows.*row 1 sums to 1\.2"):
        metric(probs, torch.tensor([0, 1, 0]))


def test_softmax_rows_in_low_precision_are_accepted():
    """float16 softmax rows over 1000 classes (row sums off by float rounding) → accepted, and the Brier score
    equals the float64 one computed from the same rows."""
    torch.manual_seed(0)
    probs = torch.randn(64, 1000).softmax(dim=-1).half()
    target = torch.randint(0, 1000, (64,))
    expected = ((probs.double() - torch.nn.functional.one_hot(target, 1000)) ** 2).sum(dim=1).mean()
    torch.testing.assert_close(brier_score(probs, target).double(), expected, rtol=1e-3, atol=0)
    expected_calibration_error(probs.float(), target, 15)  # accepted


def test_nll_of_no_samples():
    """negative_log_likelihood of an empty (0, C) input → ValueError naming `logits` (before: NaN)."""
    with pytest.raises(ValueError, match=r"`logits` with at least one row"):
        negative_log_likelihood(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))


SCORES = {"nll": lambda x: negative_log_likelihood(x, torch.zeros(len(x), dtype=torch.long))}
SCORES |= {"msp": max_softmax_probability, "neg-entropy": negative_entropy, "energy": energy_score}


@pytest.mark.parametrize("score", list(SCORES.values()), ids=list(SCORES))
def test_positive_infinite_logit(score):
    """A +inf logit → ValueError naming `logits` and "+inf" (before: NaN NLL and MSP)."""
    with pytest.raises(ValueError, match=r"`logits` without \+inf"):
        score(torch.tensor([[1.0, 0.0], [float("inf"), 0.0]]))


@pytest.mark.parametrize("score", list(SCORES.values()), ids=list(SCORES))
def test_row_of_only_negative_infinity(score):
    """A row of only −inf logits → ValueError naming `logits` and the row (before: MSP NaN, entropy 0 = certain)."""
    with pytest.raises(ValueError, match=r"every row of `logits`.*1 row\(s\) of only -inf, e\.g\. row 1"):
        score(torch.tensor([[1.0, 0.0], [float("-inf"), float("-inf")]]))


def test_some_negative_infinity_is_a_defined_probability_of_zero():
    """A row with one −inf logit among finite ones → defined: that class has probability 0 (hand-worked: logits
    (0, 0, −inf) give MSP 1/2, entropy log 2, NLL of class 0 log 2)."""
    logits = torch.tensor([[0.0, 0.0, float("-inf")]])
    assert max_softmax_probability(logits).item() == pytest.approx(0.5)
    assert negative_entropy(logits).item() == pytest.approx(-math.log(2))
    assert negative_log_likelihood(logits, torch.tensor([0])).item() == pytest.approx(math.log(2))


@pytest.mark.parametrize("value", [1e20, -1e25, 1e30, 3e38])
def test_ugmm_layer_finite_beyond_its_range(value):
    """UGMMLayer fed finite |x| ≥ 1e20 (float32) → finite outputs and finite gradients for every parameter, equal to
    the outputs at the documented bound (finite_input_bound); inputs within the bound are computed unchanged."""
    torch.manual_seed(0)
    layer = UGMMLayer(4, 3)
    x = torch.randn(2, 4)
    x[0, 1] = value
    x.requires_grad_(True)
    out = layer(x)
    out.sum().backward()
    assert out.isfinite().all() and x.grad.isfinite().all()
    assert all(p.grad.isfinite().all() for p in layer.parameters())
    at_bound = x.detach().clone()
    at_bound[0, 1] = math.copysign(finite_input_bound(torch.float32), value)
    torch.testing.assert_close(out.detach(), layer(at_bound).detach())
    inside = torch.randn(2, 4) * 1e3
    reference = UGMMLayer(4, 3, backend="reference").double()
    reference.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(inside).double(), reference(inside.double()), rtol=1e-5, atol=0)


def test_ugmm_layer_keeps_nonfinite_inputs_as_they_are():
    """NaN and ±inf inputs to a UGMMLayer are not clamped: a NaN row stays NaN (not hidden), an infinite input is
    a component of density 0, as in the reference formula."""
    torch.manual_seed(0)
    layer = UGMMLayer(4, 3)
    x = torch.zeros(3, 4)
    x[1, 0], x[2, 3] = float("nan"), float("inf")
    out = layer(x)
    assert out[0].isfinite().all() and out[1].isnan().all()
    reference = UGMMLayer(4, 3, backend="reference")
    reference.load_state_dict(layer.state_dict())
    torch.testing.assert_close(out[2], reference(x[2:]).squeeze(0))
