"""Confidence / in-distribution scores from logits against float64 numpy formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ugmm_vision.functional import (
    SCORES,
    compute_scores,
    density_logsumexp,
    density_max,
    energy_score,
    hidden_density_sum,
    max_logit,
    max_softmax_probability,
    negative_entropy,
)


def np_logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))[:, 0]


def np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture
def logits() -> torch.Tensor:
    return 4 * torch.randn(32, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_against_numpy(logits: torch.Tensor) -> None:
    x = logits.numpy()
    p = np_softmax(x)
    np.testing.assert_allclose(max_softmax_probability(logits).numpy(), p.max(-1))
    np.testing.assert_allclose(negative_entropy(logits).numpy(), (p * np.log(p)).sum(-1))
    np.testing.assert_allclose(max_logit(logits).numpy(), x.max(-1))
    np.testing.assert_allclose(density_max(logits).numpy(), x.max(-1))
    np.testing.assert_allclose(density_logsumexp(logits).numpy(), np_logsumexp(x))
    np.testing.assert_allclose(energy_score(logits).numpy(), np_logsumexp(x))


@pytest.mark.parametrize("temperature", [0.5, 1.0, 1000.0])
def test_energy_temperature(logits: torch.Tensor, temperature: float) -> None:
    expected = temperature * np_logsumexp(logits.numpy() / temperature)
    np.testing.assert_allclose(energy_score(logits, temperature=temperature).numpy(), expected)


def test_hidden_density_sum() -> None:
    g = torch.Generator().manual_seed(1)
    hidden = [torch.randn(5, 8, generator=g), torch.randn(5, 3, generator=g)]
    expected = hidden[0].sum(1) + hidden[1].sum(1)
    torch.testing.assert_close(hidden_density_sum(hidden), expected)
    torch.testing.assert_close(hidden_density_sum((hidden[0],)), hidden[0].sum(1))


@pytest.mark.parametrize("name", sorted(SCORES))
def test_confident_rows_score_higher_and_shapes(name: str) -> None:
    # Same scale of logits: a peaked row must beat a flat row for every score.
    logits = torch.tensor([[6.0, 0.0, 0.0], [2.0, 2.0, 2.0]])
    scores = SCORES[name](logits)
    assert scores.shape == (2,) and scores[0] > scores[1]


@pytest.mark.parametrize("name", sorted(SCORES))
def test_no_nan_with_extreme_logits(name: str) -> None:
    logits = torch.tensor([[0.0, float("-inf"), -1e4], [1e4, -1e4, 0.0], [-300.0, -310.0, -305.0]])
    assert torch.isfinite(SCORES[name](logits)).all()


@pytest.mark.parametrize("name", sorted(SCORES))
def test_one_class(name: str) -> None:
    logits = torch.tensor([[1.5], [-2.0]])
    assert SCORES[name](logits).shape == (2,)


def test_registry_and_compute_scores(logits: torch.Tensor) -> None:
    assert set(SCORES) == {"msp", "neg_entropy", "energy", "max_logit", "density_max", "density_logsumexp"}
    everything = compute_scores(logits)
    assert list(everything) == list(SCORES)
    for name, scores in everything.items():
        torch.testing.assert_close(scores, SCORES[name](logits))
    assert list(compute_scores(logits, names=("energy", "msp"))) == ["energy", "msp"]
    assert list(compute_scores(logits, names="msp")) == ["msp"]


def test_compute_scores_unknown_name(logits: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"`names` from .*unknown \['softmax'\]"):
        compute_scores(logits, names=["msp", "softmax"])


@pytest.mark.parametrize("fn", list(SCORES.values()))
def test_validation(fn) -> None:
    with pytest.raises(ValueError, match=r"`logits` of shape \(N, C\)"):
        fn(torch.randn(4))
    with pytest.raises(ValueError, match="`logits` of shape"):
        fn(torch.ones(4, 2, dtype=torch.long))


def test_argument_validation() -> None:
    with pytest.raises(ValueError, match="`temperature` > 0"):
        energy_score(torch.randn(2, 3), temperature=0.0)
    with pytest.raises(ValueError, match="`hidden_outputs` to be a non-empty list"):
        hidden_density_sum([])
    with pytest.raises(ValueError, match=r"`hidden_outputs\[1\]` of shape \(4, O\)"):
        hidden_density_sum([torch.randn(4, 2), torch.randn(3, 2)])
