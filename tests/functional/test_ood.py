"""OOD detection metrics against scikit-learn (ID = positive class, higher score = more in-distribution)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from ugmm_vision.functional import fpr_at_tpr, ood_aupr, ood_auroc


def make_scores(
    n_id: int = 300,
    n_ood: int = 200,
    seed: int = 0,
    loc: float = 0.0,
    scale: float = 1.0,
    decimals: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    id_scores = loc + scale * (torch.randn(n_id, generator=g) + 1.0)
    ood_scores = loc + scale * torch.randn(n_ood, generator=g)
    if decimals is not None:
        id_scores, ood_scores = (
            torch.round(id_scores, decimals=decimals),
            torch.round(ood_scores, decimals=decimals),
        )
    return id_scores, ood_scores


def sk_inputs(id_scores: torch.Tensor, ood_scores: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    y = np.concatenate([np.ones(len(id_scores)), np.zeros(len(ood_scores))])
    return y, torch.cat([id_scores, ood_scores]).double().numpy()


# (loc, scale): plain scores; energy-like large scores whose sigmoid would saturate in float32; tiny spreads.
CASES = [(0.0, 1.0, None), (40.0, 5.0, None), (0.0, 1.0, 1), (1e4, 1e-2, None)]


@pytest.mark.parametrize(("loc", "scale", "decimals"), CASES)
def test_auroc_matches_sklearn(loc: float, scale: float, decimals: int | None) -> None:
    id_scores, ood_scores = make_scores(loc=loc, scale=scale, decimals=decimals)
    y, s = sk_inputs(id_scores, ood_scores)
    np.testing.assert_allclose(ood_auroc(id_scores, ood_scores).item(), roc_auc_score(y, s), rtol=1e-6)


@pytest.mark.parametrize(("loc", "scale", "decimals"), CASES)
def test_aupr_in_and_out_match_sklearn(loc: float, scale: float, decimals: int | None) -> None:
    id_scores, ood_scores = make_scores(loc=loc, scale=scale, decimals=decimals)
    y, s = sk_inputs(id_scores, ood_scores)
    np.testing.assert_allclose(ood_aupr(id_scores, ood_scores).item(), average_precision_score(y, s), rtol=1e-6)
    aupr_out = ood_aupr(id_scores, ood_scores, positive="ood").item()
    np.testing.assert_allclose(aupr_out, average_precision_score(1 - y, -s), rtol=1e-6)


def sk_fpr_at_tpr(id_scores: torch.Tensor, ood_scores: torch.Tensor, tpr: float) -> float:
    y, s = sk_inputs(id_scores, ood_scores)
    fpr, tprs, _ = roc_curve(y, s, drop_intermediate=False)
    return float(fpr[np.argmax(tprs >= tpr)])


@pytest.mark.parametrize("tpr", [0.5, 0.8, 0.95, 1.0])
@pytest.mark.parametrize(("loc", "scale", "decimals"), CASES)
def test_fpr_at_tpr_matches_sklearn_roc_curve(tpr: float, loc: float, scale: float, decimals: int | None) -> None:
    id_scores, ood_scores = make_scores(n_id=97, n_ood=61, loc=loc, scale=scale, decimals=decimals)
    expected = sk_fpr_at_tpr(id_scores, ood_scores, tpr)
    assert fpr_at_tpr(id_scores, ood_scores, tpr=tpr).item() == pytest.approx(expected)


def test_fpr_at_tpr_exact_fraction() -> None:
    # 0.95 · 20 = 19 must need 19 ID samples, not 20.
    id_scores = torch.arange(20, 0, -1).double()  # 20 … 1
    ood_scores = torch.tensor([1.5, 0.5])
    assert fpr_at_tpr(id_scores, ood_scores, tpr=0.95).item() == 0.0  # threshold 2.0
    assert fpr_at_tpr(id_scores, ood_scores, tpr=1.0).item() == 0.5  # threshold 1.0


def test_perfect_and_constant_detectors() -> None:
    id_scores, ood_scores = torch.tensor([5.0, 6.0, 7.0]), torch.tensor([1.0, 2.0])
    assert ood_auroc(id_scores, ood_scores).item() == 1.0
    assert ood_aupr(id_scores, ood_scores).item() == 1.0
    assert ood_aupr(id_scores, ood_scores, positive="ood").item() == 1.0
    assert fpr_at_tpr(id_scores, ood_scores).item() == 0.0
    assert ood_auroc(ood_scores, id_scores).item() == 0.0
    constant = torch.zeros(3), torch.zeros(2)
    assert ood_auroc(*constant).item() == 0.5
    assert fpr_at_tpr(*constant).item() == 1.0
    assert ood_aupr(*constant).item() == pytest.approx(0.6)  # the fraction of ID samples


def test_large_scores_keep_their_order() -> None:
    # sigmoid(20) and sigmoid(40) are both 1.0 in float32; the metric must still see 40 > 20.
    id_scores, ood_scores = torch.tensor([40.0, 39.0]), torch.tensor([20.0, 21.0])
    assert ood_auroc(id_scores, ood_scores).item() == 1.0


def test_infinite_scores_are_ranked() -> None:
    id_scores, ood_scores = torch.tensor([float("inf"), 0.0]), torch.tensor([float("-inf"), -1.0])
    assert ood_auroc(id_scores, ood_scores).item() == 1.0


@pytest.mark.parametrize(
    ("id_scores", "ood_scores", "match"),
    [
        (torch.zeros(0), torch.rand(3), "`id_scores` with at least one"),
        (torch.rand(3), torch.zeros(0), "`ood_scores` with at least one"),
        (torch.rand(3, 2), torch.rand(3), r"`id_scores` of shape \(N,\)"),
        (torch.rand(3), torch.tensor([0.0, float("nan")]), "`ood_scores` without NaN"),
        (torch.rand(3), torch.arange(3), "`ood_scores` of shape"),
    ],
)
def test_validation(id_scores: torch.Tensor, ood_scores: torch.Tensor, match: str) -> None:
    for fn in (ood_auroc, ood_aupr, fpr_at_tpr):
        with pytest.raises(ValueError, match=match):
            fn(id_scores, ood_scores)


def test_argument_validation() -> None:
    with pytest.raises(ValueError, match="`positive` to be 'id' or 'ood'"):
        ood_aupr(torch.rand(3), torch.rand(3), positive="in")
    for bad in (0.0, 1.2, True):
        with pytest.raises(ValueError, match=r"`tpr` in \(0, 1\]"):
            fpr_at_tpr(torch.rand(3), torch.rand(3), tpr=bad)
