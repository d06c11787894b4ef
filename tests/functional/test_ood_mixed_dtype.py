"""OOD metrics on score sets of different dtypes compare them in the wider dtype, as scikit-learn does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from ugmm_vision.functional import fpr_at_tpr, ood_aupr, ood_auroc
from ugmm_vision.metrics import OODDetection


def _sklearn(id_scores: torch.Tensor, ood_scores: torch.Tensor) -> tuple[float, float, float]:
    """AUROC, AUPR-In, AUPR-Out by scikit-learn on the scores as float64 (every score exact).

    torchmetrics integrates the curves in float32, hence the 1e-6 tolerance below; a tie made by a narrowing cast
    moves the results by far more (the issue's case: 0.5 instead of 1/3).
    """
    scores = np.concatenate([id_scores.double().numpy(), ood_scores.double().numpy()])
    labels = np.concatenate([np.ones(id_scores.numel()), np.zeros(ood_scores.numel())])
    return (
        roc_auc_score(labels, scores),
        average_precision_score(labels, scores),
        average_precision_score(1 - labels, -scores),
    )


# float32 ID scores, float64 OOD scores that differ from them only beyond float32 precision.
ISSUE_CASE = (
    torch.tensor([1.0], dtype=torch.float32),
    torch.tensor([1.0 + 1e-12, 1.0 + 2e-12, 1.0 - 1e-12], dtype=torch.float64),
)


def _near_ties(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    id_scores = torch.randint(0, 5, (40,), generator=g).float()  # float32, many exact ties
    offsets = torch.randn(30, generator=g, dtype=torch.float64) * 1e-10  # below float32 resolution
    ood_scores = torch.randint(0, 5, (30,), generator=g).double() + offsets
    return id_scores, ood_scores


@pytest.mark.parametrize("swap", [False, True], ids=["f32-id", "f64-id"])
@pytest.mark.parametrize("case", ["issue", "near-ties-0", "near-ties-1"])
def test_mixed_dtypes_match_sklearn(case: str, swap: bool) -> None:
    id_scores, ood_scores = ISSUE_CASE if case == "issue" else _near_ties(int(case[-1]))
    if swap:  # the wider dtype on the ID side instead
        id_scores, ood_scores = ood_scores.clone(), id_scores.clone()
    auroc, aupr_in, aupr_out = _sklearn(id_scores, ood_scores)
    assert ood_auroc(id_scores, ood_scores).item() == pytest.approx(auroc, abs=1e-6)
    assert ood_aupr(id_scores, ood_scores).item() == pytest.approx(aupr_in, abs=1e-6)
    assert ood_aupr(id_scores, ood_scores, positive="ood").item() == pytest.approx(aupr_out, abs=1e-6)
    for metric in (ood_auroc(id_scores, ood_scores), fpr_at_tpr(id_scores, ood_scores)):
        assert metric.dtype == torch.float64  # reported in the wider dtype


def test_issue_numbers() -> None:
    # The issue's case: AUROC 1/3 (scikit-learn), not the 0.5 of ties made by casting to float32.
    assert ood_auroc(*ISSUE_CASE).item() == pytest.approx(1 / 3, abs=1e-6)


def test_metric_class_with_mixed_dtype_batches_matches_sklearn() -> None:
    id_scores, ood_scores = _near_ties(2)
    metric = OODDetection()
    metric.update(id_scores, True)
    metric.update(ood_scores, False)
    result = metric.compute()
    auroc, aupr_in, aupr_out = _sklearn(id_scores, ood_scores)
    assert result["auroc"].item() == pytest.approx(auroc, abs=1e-6)
    assert result["aupr_in"].item() == pytest.approx(aupr_in, abs=1e-6)
    assert result["aupr_out"].item() == pytest.approx(aupr_out, abs=1e-6)
