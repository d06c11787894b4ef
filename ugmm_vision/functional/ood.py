"""Out-of-distribution detection metrics from per-sample scores.

Convention: a higher score means "more in-distribution", and in-distribution (ID) samples are the positive
class (AUPR-In). AUROC and average precision are torchmetrics' ``binary_auroc`` /
``binary_average_precision``. Scores are replaced by their ranks (scaled to [0, 1]) before torchmetrics sees
them: torchmetrics treats values outside [0, 1] as logits and squashes them with a sigmoid, which in float32
merges large scores (an energy of 20 and of 40 both become 1.0) and would turn them into ties. Ranks keep
every order and every tie.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torchmetrics.functional.classification import binary_auroc, binary_average_precision

from ugmm_vision.checks import check_fraction, check_scores
from ugmm_vision.functional._validation import smallest_count_reaching

__all__ = ["fpr_at_tpr", "ood_aupr", "ood_auroc"]


def _ood_validate(id_scores: Tensor, ood_scores: Tensor) -> None:
    check_scores(id_scores, "id_scores")
    check_scores(ood_scores, "ood_scores")


def _ood_format(id_scores: Tensor, ood_scores: Tensor) -> tuple[Tensor, Tensor]:
    """Rank-transformed scores in [0, 1] (float64) and ID labels (1 = ID), each (N_id + N_ood,)."""
    # Compared in the wider of the two dtypes: casting float64 OOD scores to float32 ID scores would merge scores
    # that differ beyond float32 precision into ties (as fpr_at_tpr, which compares at full precision, does not).
    dtype = torch.promote_types(id_scores.dtype, ood_scores.dtype)
    scores = torch.cat([id_scores.to(dtype), ood_scores.to(dtype)])  # (N,)
    _, ranks = torch.unique(scores, sorted=True, return_inverse=True)  # (N,) dense ranks, ties share one
    preds = ranks.double() / max(int(ranks.max()), 1)
    target = torch.cat([torch.ones_like(id_scores, dtype=torch.long), torch.zeros_like(ood_scores, dtype=torch.long)])
    return preds, target


def _to_float(result: Tensor, id_scores: Tensor, ood_scores: Tensor) -> Tensor:
    """The metric in the wider floating dtype of the two score sets (at least float32)."""
    dtype = torch.promote_types(torch.promote_types(id_scores.dtype, ood_scores.dtype), torch.float32)
    return result.to(dtype)


def ood_auroc(id_scores: Tensor, ood_scores: Tensor) -> Tensor:
    """AUROC of separating ID from OOD samples by score: P(ID score > OOD score), ties counting ½.

    Args:
        id_scores: scores of in-distribution samples, shape (N_id,), higher = more in-distribution.
        ood_scores: scores of out-of-distribution samples, shape (N_ood,).

    Returns:
        Scalar tensor in [0, 1], higher is better (0.5 = chance).

    Example:
        >>> ood_auroc(torch.tensor([3.0, 2.0, 0.5]), torch.tensor([1.0, 0.0]))
        tensor(0.8333)
    """
    _ood_validate(id_scores, ood_scores)
    return _to_float(binary_auroc(*_ood_format(id_scores, ood_scores), validate_args=False), id_scores, ood_scores)


def ood_aupr(id_scores: Tensor, ood_scores: Tensor, positive: Literal["id", "ood"] = "id") -> Tensor:
    """Area under the precision–recall curve (average precision) of the ID-vs-OOD detector.

    ``positive="id"`` (AUPR-In) treats ID samples as positives ranked by score; ``positive="ood"`` (AUPR-Out)
    treats OOD samples as positives ranked by the negated score.

    Args:
        id_scores: scores of in-distribution samples, shape (N_id,), higher = more in-distribution.
        ood_scores: scores of out-of-distribution samples, shape (N_ood,).
        positive: which set is the positive class, ``"id"`` or ``"ood"``.

    Returns:
        Scalar tensor in [0, 1], higher is better (chance = fraction of positives).

    Example:
        >>> id_scores, ood_scores = torch.tensor([3.0, 2.0, 0.5]), torch.tensor([1.0, 0.0])
        >>> ood_aupr(id_scores, ood_scores), ood_aupr(id_scores, ood_scores, positive="ood")
        (tensor(0.9167), tensor(0.8333))
    """
    if positive not in ("id", "ood"):
        raise ValueError(f"Expected `positive` to be 'id' or 'ood', got {positive!r}")
    _ood_validate(id_scores, ood_scores)
    preds, target = _ood_format(id_scores, ood_scores)
    if positive == "ood":
        preds, target = 1.0 - preds, 1 - target
    return _to_float(binary_average_precision(preds, target, validate_args=False), id_scores, ood_scores)


def fpr_at_tpr(id_scores: Tensor, ood_scores: Tensor, tpr: float = 0.95) -> Tensor:
    """False-positive rate (OOD accepted as ID) at the highest threshold keeping ``tpr`` of the ID samples.

    The threshold is the k-th largest ID score with k the smallest count such that ``k / N_id >= tpr``; an OOD
    sample is a false positive when its score is at least the threshold (ties count against the detector).
    This is the first point of scikit-learn's ``roc_curve(..., drop_intermediate=False)`` whose TPR reaches
    ``tpr``.

    Args:
        id_scores: scores of in-distribution samples, shape (N_id,), higher = more in-distribution.
        ood_scores: scores of out-of-distribution samples, shape (N_ood,).
        tpr: wanted true-positive rate (recall of ID samples), in (0, 1].

    Returns:
        Scalar tensor in [0, 1], lower is better.

    Example:
        >>> fpr_at_tpr(torch.tensor([3.0, 2.0, 0.5]), torch.tensor([1.0, 0.0]), tpr=0.95)  # threshold 0.5
        tensor(0.5000)
    """
    check_fraction("tpr", tpr, low_open=True, high_open=False)
    _ood_validate(id_scores, ood_scores)
    k = smallest_count_reaching(tpr, id_scores.numel())
    threshold = id_scores.topk(k).values[-1]  # k-th largest ID score
    return _to_float((ood_scores >= threshold).double().mean(), id_scores, ood_scores)
