"""Conformal sets: coverage ≥ 1 − α over many random calibration splits, set sizes by hand."""

import math

import numpy as np
import pytest
import torch

from ugmm_vision.methods import aps_scores, conformal_metrics, conformal_quantile, conformal_report, prediction_sets


@pytest.mark.parametrize("alpha", [0.1, 0.05])
@pytest.mark.parametrize(("penalty", "k_reg"), [(0.0, 0), (0.05, 1)])
def test_coverage_at_least_one_minus_alpha_over_random_splits(alpha, penalty, k_reg):
    # Exchangeable data: a fixed (miscalibrated) classifier's probabilities with labels drawn from other probabilities.
    gen = torch.Generator().manual_seed(0)
    n, splits = 1000, 200
    logits = torch.randn(n, 6, generator=gen, dtype=torch.float64) * 2
    labels = torch.multinomial((logits / 1.5).softmax(-1), 1, generator=gen).squeeze(1)
    probs = logits.softmax(-1)
    coverages = []
    for _ in range(splits):
        perm = torch.randperm(n, generator=gen)
        cal, test = perm[:300], perm[300:]
        m = conformal_metrics(probs[cal], labels[cal], probs[test], labels[test], alpha, penalty=penalty, k_reg=k_reg)
        coverages.append(m["coverage"])
    mean, se = np.mean(coverages), np.std(coverages) / math.sqrt(splits)
    # Split-conformal coverage, averaged over splits, is ≥ 1 − α (and ≤ 1 − α + 1/(n_cal + 1) without ties).
    assert mean >= 1 - alpha - 3 * se
    assert mean <= 1 - alpha + 1 / 301 + 3 * se + 0.01


def test_set_sizes_on_a_hand_worked_case():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5], [0.25, 0.25, 0.25, 0.25]])
    # Sorted cumulative masses: 0.5, 0.8, 0.95, 1.0 (rows 1–2 in their own order); row 3 (ties): 3 of 4 labels ≤ 0.8.
    torch.testing.assert_close(aps_scores(probs[:2]), torch.tensor([[0.5, 0.8, 0.95, 1.0], [1.0, 0.95, 0.8, 0.5]]))
    sets = prediction_sets(probs, 0.8)
    assert sets[:2].tolist() == [[True, True, False, False], [False, False, True, True]]
    assert sets.sum(1).tolist() == [2, 2, 3]
    # Calibration labels 2, 0 of rows 1–2 score 0.95 and 1.0; n = 2, α = 0.7: the ⌈0.9⌉ = 1st smallest, q̂ = 0.95.
    # Sets {0, 1, 2} and {3, 2, 1}: size 3 each; test labels 0, 0: the first is covered, the second is not.
    m = conformal_metrics(probs[:2], torch.tensor([2, 0]), probs[:2], torch.tensor([0, 0]), 0.7)
    assert (m["qhat"], m["coverage"], m["mean_set_size"]) == (pytest.approx(0.95), 0.5, 3.0)
    # RAPS, λ = 0.1, k_reg = 1: row 1 scores 0.5, 0.9, 1.15, 1.3 → with q̂ = 0.9 a set of two.
    assert prediction_sets(probs[:1], 0.9, penalty=0.1, k_reg=1).sum().item() == 2


def test_quantile_rule():
    scores = torch.arange(1.0, 11.0)  # n = 10
    assert conformal_quantile(scores, 0.1) == 10.0  # ⌈11·0.9⌉ = ⌈9.9⌉ = 10
    assert conformal_quantile(scores, 0.5) == 6.0  # ⌈5.5⌉ = 6
    assert conformal_quantile(scores[:5], 0.1) == math.inf  # ⌈5.4⌉ = 6 > 5: the set is every label
    with pytest.raises(ValueError, match="`alpha`"):
        conformal_quantile(scores, 1.0)
    with pytest.raises(ValueError, match="`probs`"):
        aps_scores(torch.ones(3))
    with pytest.raises(ValueError, match="`penalty`"):
        aps_scores(torch.ones(2, 2) / 2, penalty=-1)


def test_report_section():
    logits, labels = torch.randn(100, 4, dtype=torch.float64), torch.randint(0, 4, (100,))
    report = conformal_report(logits[:50], labels[:50], logits[50:], labels[50:], alphas=(0.1,))
    assert report["score"] == "aps"
    expected = conformal_metrics(logits[:50].softmax(-1), labels[:50], logits[50:].softmax(-1), labels[50:], 0.1)
    assert report["alpha=0.1"] == pytest.approx(expected)
