"""Selective prediction metrics against hand-worked examples, brute force over tie-breaks and scikit-learn."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from ugmm_vision.functional import augrc, aurc, coverage_at_risk, risk_at_coverage, risk_coverage_curve


def np_areas(errors_in_order: np.ndarray) -> tuple[float, float]:
    """AURC (mean selective risk) and AUGRC (trapezoids from (0, 0)) for one fixed acceptance order."""
    n = len(errors_in_order)
    cum = np.concatenate([[0.0], np.cumsum(errors_in_order, dtype=np.float64)])
    k = np.arange(1, n + 1)
    aurc_value = np.mean(cum[1:] / k)
    augrc_value = np.sum((cum[:-1] + cum[1:]) / 2) / n / n
    return float(aurc_value), float(augrc_value)


def random_case(n: int, seed: int, decimals: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    confidence = torch.rand(n, generator=g, dtype=torch.float64)
    if decimals is not None:
        confidence = torch.round(confidence, decimals=decimals)  # force ties
    correct = torch.rand(n, generator=g, dtype=torch.float64) < 0.3 + 0.6 * confidence  # informative
    return confidence, correct


def test_hand_worked_example() -> None:
    confidence = torch.tensor([0.6, 0.9, 0.7, 0.8])
    correct = torch.tensor([0, 1, 1, 0])
    # Accepted in order 0.9 (right), 0.8 (wrong), 0.7 (right), 0.6 (wrong): errors 0, 1, 1, 2.
    # AURC = (0/1 + 1/2 + 1/3 + 2/4) / 4 = 1/3; generalised risks 0, 1/4, 1/4, 2/4:
    # AUGRC = 1/4 · ((0 + 0) + (0 + 1/4) + (1/4 + 1/4) + (1/4 + 1/2)) / 2 = 3/16.
    torch.testing.assert_close(aurc(confidence, correct), torch.tensor(1 / 3))
    torch.testing.assert_close(augrc(confidence, correct), torch.tensor(3 / 16))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ties_equal_average_over_every_tie_break(seed: int) -> None:
    confidence, correct = random_case(7, seed, decimals=1)
    confidence[:3] = 0.5  # at least one group of three tied samples
    errors = (~correct).double().numpy()
    orders = [o for o in itertools.permutations(range(7)) if np.all(np.diff(confidence.numpy()[list(o)]) <= 0)]
    areas = np.array([np_areas(errors[list(o)]) for o in orders])
    expected_aurc, expected_augrc = areas.mean(axis=0)
    np.testing.assert_allclose(aurc(confidence, correct).item(), expected_aurc, rtol=1e-12)
    np.testing.assert_allclose(augrc(confidence, correct).item(), expected_augrc, rtol=1e-12)


@pytest.mark.parametrize("decimals", [None, 1])
def test_augrc_equals_traub_identity_with_sklearn_auroc(decimals: int | None) -> None:
    confidence, correct = random_case(500, seed=3, decimals=decimals)
    acc = correct.double().mean().item()
    auroc_f = roc_auc_score(correct.numpy(), confidence.numpy())  # failure detection, ties count 1/2
    expected = (1 - auroc_f) * acc * (1 - acc) + 0.5 * (1 - acc) ** 2
    np.testing.assert_allclose(augrc(confidence, correct).item(), expected, rtol=1e-10)


def test_distinct_scores_match_sorted_formula() -> None:
    confidence, correct = random_case(300, seed=4)
    order = np.argsort(-confidence.numpy())
    expected_aurc, expected_augrc = np_areas((~correct).double().numpy()[order])
    np.testing.assert_allclose(aurc(confidence, correct).item(), expected_aurc, rtol=1e-12)
    np.testing.assert_allclose(augrc(confidence, correct).item(), expected_augrc, rtol=1e-12)


def test_order_invariance() -> None:
    confidence, correct = random_case(200, seed=5, decimals=1)
    perm = torch.randperm(200, generator=torch.Generator().manual_seed(0))
    for fn in (aurc, augrc):
        assert fn(confidence, correct).item() == fn(confidence[perm], correct[perm]).item()


@pytest.mark.parametrize(("all_correct", "expected_aurc", "expected_augrc"), [(True, 0.0, 0.0), (False, 1.0, 0.5)])
def test_all_correct_and_all_wrong(all_correct: bool, expected_aurc: float, expected_augrc: float) -> None:
    confidence = torch.rand(10)
    correct = torch.full((10,), all_correct)
    assert aurc(confidence, correct).item() == pytest.approx(expected_aurc)
    assert augrc(confidence, correct).item() == pytest.approx(expected_augrc)


def test_single_sample_and_constant_confidence() -> None:
    assert aurc(torch.tensor([0.3]), torch.tensor([False])).item() == 1.0
    assert augrc(torch.tensor([0.3]), torch.tensor([False])).item() == 0.5
    # All tied: the risk is the error rate at every coverage.
    torch.testing.assert_close(aurc(torch.ones(4), torch.tensor([1, 0, 1, 1])), torch.tensor(0.25))


def test_risk_coverage_curve_matches_thresholds() -> None:
    confidence, correct = random_case(100, seed=6, decimals=2)
    curve = risk_coverage_curve(confidence, correct)
    c, wrong = confidence.numpy(), (~correct).numpy()
    thresholds = np.unique(c)[::-1]
    np.testing.assert_array_equal(curve.threshold.numpy(), thresholds)
    np.testing.assert_allclose(curve.coverage.numpy(), [(c >= t).mean() for t in thresholds])
    np.testing.assert_allclose(curve.risk.numpy(), [wrong[c >= t].mean() for t in thresholds])
    assert curve.coverage[-1].item() == 1.0


def test_risk_coverage_curve_hand_worked() -> None:
    curve = risk_coverage_curve(torch.tensor([0.9, 0.8, 0.8, 0.6]), torch.tensor([1, 0, 1, 0]))
    torch.testing.assert_close(curve.coverage, torch.tensor([0.25, 0.75, 1.0]))
    torch.testing.assert_close(curve.risk, torch.tensor([0.0, 1 / 3, 0.5]))


@pytest.mark.parametrize(
    ("coverage", "expected"),
    [(0.1, 0.0), (0.25, 0.0), (0.26, 1 / 3), (0.5, 1 / 3), (0.75, 1 / 3), (0.8, 0.5), (1.0, 0.5)],
)
def test_risk_at_coverage(coverage: float, expected: float) -> None:
    confidence = torch.tensor([0.9, 0.8, 0.8, 0.6])
    result = risk_at_coverage(confidence, torch.tensor([1, 0, 1, 0]), coverage)
    assert result.item() == pytest.approx(expected)


def test_risk_at_coverage_exact_fractions() -> None:
    # 0.3 · 10 is 3.0000000000000004 in floats: coverage 0.3 must still mean 3 of 10 samples.
    confidence = torch.arange(10, 0, -1).double()
    correct = torch.tensor([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    assert risk_at_coverage(confidence, correct, 0.3).item() == 0.0
    assert risk_at_coverage(confidence, correct, 0.7).item() == pytest.approx(4 / 7)


@pytest.mark.parametrize(("risk", "expected"), [(0.0, 0.25), (0.3, 0.25), (1 / 3, 0.75), (0.49, 0.75), (0.5, 1.0)])
def test_coverage_at_risk(risk: float, expected: float) -> None:
    confidence = torch.tensor([0.9, 0.8, 0.8, 0.6])
    assert coverage_at_risk(confidence, torch.tensor([1, 0, 1, 0]), risk).item() == pytest.approx(expected)


def test_coverage_at_risk_none_achievable() -> None:
    assert coverage_at_risk(torch.tensor([0.9, 0.1]), torch.tensor([0, 1]), 0.2).item() == 0.0


@pytest.mark.parametrize(
    ("confidence", "correct", "match"),
    [
        (torch.rand(3, 1), torch.ones(3, dtype=torch.bool), r"`confidence` of shape \(N,\)"),
        (torch.tensor([0.1, float("nan")]), torch.ones(2, dtype=torch.bool), "`confidence` without NaN"),
        (torch.rand(3), torch.ones(4, dtype=torch.bool), r"`correct` of shape \(3,\)"),
        (torch.rand(3), torch.tensor([0, 1, 2]), "`correct` with bool or 0/1"),
        (torch.zeros(0), torch.zeros(0, dtype=torch.bool), "`confidence` with at least one"),
    ],
)
def test_validation(confidence: torch.Tensor, correct: torch.Tensor, match: str) -> None:
    for fn in (aurc, augrc, risk_coverage_curve):
        with pytest.raises(ValueError, match=match):
            fn(confidence, correct)


@pytest.mark.parametrize("value", [0.0, 1.5, -0.1, float("nan"), True])
def test_fraction_validation(value: float) -> None:
    with pytest.raises(ValueError, match=r"`coverage` in \(0, 1\]"):
        risk_at_coverage(torch.rand(3), torch.ones(3, dtype=torch.bool), value)
    if value != 0.0:
        with pytest.raises(ValueError, match=r"`risk` in \[0, 1\]"):
            coverage_at_risk(torch.rand(3), torch.ones(3, dtype=torch.bool), value)
