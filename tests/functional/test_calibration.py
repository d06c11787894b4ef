"""Calibration errors, Brier score and NLL against torchmetrics, scikit-learn and float64 numpy formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from logit_cases import random_logits  # registered by tests/conftest.py
from sklearn.metrics import brier_score_loss, log_loss
from torchmetrics.classification import MulticlassCalibrationError

from ugmm_vision.functional import (
    adaptive_calibration_error,
    brier_score,
    classwise_calibration_error,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_diagram_data,
)


def make_data(n: int = 200, c: int = 5, seed: int = 0, scale: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    return random_logits(n, c, seed, scale)


def np_uniform_bins(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index with bins [i/n, (i+1)/n), last bin closed, written independently of the library."""
    return np.minimum(np.floor(values * n_bins).astype(int), n_bins - 1)


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("n_bins", [1, 5, 15])
@pytest.mark.parametrize("scale", [1.0, 30.0])  # 30: many confidences round to exactly 1.0
def test_ece_matches_torchmetrics_class(norm: str, n_bins: int, scale: float) -> None:
    logits, target = make_data(scale=scale)
    probs = logits.softmax(-1)
    expected = MulticlassCalibrationError(num_classes=5, n_bins=n_bins, norm=norm)(probs, target)
    torch.testing.assert_close(expected_calibration_error(probs, target, n_bins, norm), expected.float())


def test_ece_one_class_and_perfect_l2() -> None:
    probs, target = torch.ones(7, 1), torch.zeros(7, dtype=torch.long)
    for norm in ("l1", "l2", "max"):
        result = expected_calibration_error(probs, target, norm=norm)
        assert result.dtype == torch.float32 and result.item() == 0.0


def test_ece_hand_worked() -> None:
    # Confidences 0.9 (right), 0.8 (wrong), 0.6 (right), 0.6 (right); two bins [0, .5), [.5, 1].
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.4, 0.6]])
    target = torch.tensor([0, 1, 1, 1])
    # One non-empty bin: accuracy 3/4, mean confidence 2.9/4, gap 0.025.
    torch.testing.assert_close(expected_calibration_error(probs, target, n_bins=2), torch.tensor(0.025))


@pytest.mark.parametrize("n_bins", [3, 10, 15])
def test_reliability_diagram_matches_numpy(n_bins: int) -> None:
    logits, target = make_data(n=300, c=4, seed=1)
    probs = logits.softmax(-1).double()
    data = reliability_diagram_data(probs, target, n_bins)
    p = probs.numpy()
    conf, hit = p.max(1), (p.argmax(1) == target.numpy()).astype(float)
    index = np_uniform_bins(conf, n_bins)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore"):
        np_conf = np.bincount(index, conf, n_bins) / count
        np_acc = np.bincount(index, hit, n_bins) / count
    np.testing.assert_array_equal(data.count.numpy(), count)
    np.testing.assert_allclose(data.confidence.numpy(), np_conf, equal_nan=True)
    np.testing.assert_allclose(data.accuracy.numpy(), np_acc, equal_nan=True)
    np.testing.assert_allclose(data.bin_edges.numpy(), np.linspace(0, 1, n_bins + 1))
    # The diagram and the ECE tell the same story (no confidence is exactly 1.0 here).
    filled = count > 0
    ece = (count[filled] * np.abs(np_acc[filled] - np_conf[filled])).sum() / count.sum()
    np.testing.assert_allclose(expected_calibration_error(probs, target, n_bins).item(), ece, rtol=1e-5)


def test_reliability_diagram_empty_bins_and_exact_one() -> None:
    probs = torch.tensor([[1.0, 0.0], [0.95, 0.05], [0.55, 0.45]])
    data = reliability_diagram_data(probs, torch.tensor([0, 1, 0]), n_bins=10)
    assert data.count.tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0, 2]  # 1.0 falls in the last (closed) bin
    assert torch.isnan(data.confidence[:5]).all() and torch.isnan(data.accuracy[:5]).all()
    torch.testing.assert_close(data.accuracy[-1], torch.tensor(0.5))
    torch.testing.assert_close(data.confidence[-1], torch.tensor(0.975))


def np_adaptive_ece(conf: np.ndarray, hit: np.ndarray, n_bins: int) -> float:
    order = np.argsort(conf)
    total = 0.0
    for chunk in np.array_split(order, n_bins):
        total += abs(hit[chunk].sum() - conf[chunk].sum())
    return total / len(conf)


@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_adaptive_ece_matches_numpy_equal_mass(n_bins: int) -> None:
    logits, target = make_data(n=150, c=3, seed=2)  # 150 divisible by every n_bins: the split is unique
    probs = logits.softmax(-1).double()
    conf, pred = probs.max(1)
    hit = (pred == target).double()
    expected = np_adaptive_ece(conf.numpy(), hit.numpy(), n_bins)
    np.testing.assert_allclose(adaptive_calibration_error(probs, target, n_bins).item(), expected, rtol=1e-10)


def test_adaptive_ece_ties_share_a_bin_and_ignore_order() -> None:
    # Sorted confidences 0.6, 0.7, 0.7, 0.9; the cut for 2 bins is at position 2 (value 0.7): both 0.7 go up.
    probs = torch.tensor([[0.7, 0.3], [0.6, 0.4], [0.9, 0.1], [0.7, 0.3]])
    target = torch.tensor([0, 0, 1, 1])  # right, right, wrong, wrong
    # Bin {0.6}: |1 − 0.6| = 0.4; bin {0.7, 0.9, 0.7}: |1 − 2.3| = 1.3; ACE = 1.7 / 4.
    torch.testing.assert_close(adaptive_calibration_error(probs, target, n_bins=2), torch.tensor(0.425))
    for perm in ([3, 2, 1, 0], [1, 3, 0, 2]):
        idx = torch.tensor(perm)
        torch.testing.assert_close(adaptive_calibration_error(probs[idx], target[idx], 2), torch.tensor(0.425))


def test_adaptive_ece_more_bins_than_samples() -> None:
    probs = torch.tensor([[0.8, 0.2], [0.3, 0.7]])
    target = torch.tensor([0, 0])  # 0.8 right, 0.7 wrong: every sample alone in its bin
    torch.testing.assert_close(adaptive_calibration_error(probs, target, n_bins=15), torch.tensor(0.45))


@pytest.mark.parametrize("n_bins", [2, 15])
def test_classwise_ece_matches_numpy(n_bins: int) -> None:
    logits, target = make_data(n=120, c=4, seed=3)
    p, y = logits.softmax(-1).double().numpy(), target.numpy()
    per_class = []
    for k in range(p.shape[1]):
        index = np_uniform_bins(p[:, k], n_bins)
        gaps = [abs((y[index == b] == k).sum() - p[index == b, k].sum()) for b in range(n_bins)]
        per_class.append(sum(gaps) / len(y))
    result = classwise_calibration_error(torch.from_numpy(p), target, n_bins)
    np.testing.assert_allclose(result.item(), np.mean(per_class), rtol=1e-10)


def test_calibration_edge_cases() -> None:
    one_hot = torch.eye(3)[torch.tensor([0, 2, 1, 1])]
    target = torch.tensor([0, 2, 1, 1])  # all correct with confidence 1: perfectly calibrated
    for fn in (
        expected_calibration_error,
        adaptive_calibration_error,
        classwise_calibration_error,
        brier_score,
    ):
        assert fn(one_hot, target).item() == 0.0
    single = torch.ones(5, 1)
    zeros = torch.zeros(5, dtype=torch.long)
    assert adaptive_calibration_error(single, zeros).item() == 0.0
    assert classwise_calibration_error(single, zeros).item() == 0.0
    assert negative_log_likelihood(torch.randn(5, 1), zeros).item() == 0.0


def test_brier_score_matches_sklearn() -> None:
    logits, target = make_data(n=100, c=4, seed=4)
    probs = logits.double().softmax(-1)
    expected = brier_score_loss(target.numpy(), probs.numpy(), labels=range(4), scale_by_half=False)
    np.testing.assert_allclose(brier_score(probs, target).item(), expected, rtol=1e-10)
    binary = torch.sigmoid(torch.randn(50, generator=torch.Generator().manual_seed(5))).double()
    y = (torch.rand(50, generator=torch.Generator().manual_seed(6)) < binary).long()
    two_class = torch.stack([1 - binary, binary], dim=1)  # ours sums both classes: twice sklearn's binary score
    np.testing.assert_allclose(brier_score(two_class, y).item(), 2 * brier_score_loss(y.numpy(), binary.numpy()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nll_matches_sklearn_log_loss(dtype: torch.dtype) -> None:
    logits, target = make_data(n=100, c=6, seed=7)
    probs = logits.double().softmax(-1).numpy()
    expected = log_loss(target.numpy(), probs, labels=range(6))
    result = negative_log_likelihood(logits.to(dtype), target)
    assert result.dtype == dtype
    np.testing.assert_allclose(result.item(), expected, rtol=1e-5 if dtype == torch.float32 else 1e-10)


def test_nll_is_finite_where_softmax_underflows() -> None:
    logits = torch.tensor([[0.0, -200.0]])
    torch.testing.assert_close(negative_log_likelihood(logits, torch.tensor([1])), torch.tensor(200.0))


@pytest.mark.parametrize(
    ("probs", "target", "kwargs", "match"),
    [
        (
            torch.randn(4, 3),
            torch.zeros(4, dtype=torch.long),
            {},
            r"`probs` of shape \(N, C\) with values in \[0, 1\]",
        ),
        (torch.rand(4), torch.zeros(4, dtype=torch.long), {}, "`probs` of shape"),
        (torch.ones(4, 3, dtype=torch.long), torch.zeros(4, dtype=torch.long), {}, "`probs`"),
        (torch.full((4, 3), 1 / 3), torch.zeros(5, dtype=torch.long), {}, r"`target` of shape \(4,\)"),
        (torch.full((4, 3), 1 / 3), torch.zeros(4), {}, "integer dtype"),
        (torch.full((4, 3), 1 / 3), torch.full((4,), 3), {}, r"`target` with class indices in \[0, 2\]"),
        (torch.full((4, 3), 1 / 3), torch.zeros(4, dtype=torch.long), {"n_bins": 0}, "`n_bins`"),
        (torch.full((4, 3), 1 / 3), torch.zeros(4, dtype=torch.long), {"norm": "l3"}, "`norm`"),
    ],
)
def test_ece_validation(probs: torch.Tensor, target: torch.Tensor, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(probs, target, **kwargs)


@pytest.mark.parametrize(
    "fn", [adaptive_calibration_error, classwise_calibration_error, brier_score, reliability_diagram_data]
)
def test_probability_metrics_reject_logits(fn) -> None:
    with pytest.raises(ValueError, match="`probs`"):
        fn(torch.tensor([[2.0, -1.0]]), torch.tensor([0]))


def test_nll_validation() -> None:
    with pytest.raises(ValueError, match="`logits` of shape"):
        negative_log_likelihood(torch.randn(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        negative_log_likelihood(torch.tensor([[float("nan"), 0.0]]), torch.tensor([0]))
