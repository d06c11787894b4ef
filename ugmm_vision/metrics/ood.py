"""OOD detection as one metric: AUROC, AUPR-In, AUPR-Out and FPR at a fixed TPR from the same scores.

Samples of both kinds go through one ``update(scores, is_id)``, so the metric sits behind a LightningModule's
named evaluation loaders: the ``id`` loader passes ``is_id=True``, the ``ood`` loader ``is_id=False``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from ugmm_vision.checks import check_fraction, check_scores
from ugmm_vision.functional.ood import fpr_at_tpr, ood_aupr, ood_auroc

__all__ = ["OODDetection"]


class OODDetection(Metric):
    """ID-vs-OOD detection quality of a score (higher = more in-distribution; ID is the positive class).

    ``compute()`` returns a dict of scalar tensors: ``auroc``, ``aupr_in``, ``aupr_out`` and ``fpr95`` (the
    key follows ``tpr``: ``fpr90`` for ``tpr=0.9``). Scores are kept per sample (``cat`` states) and gathered
    across processes; ``compute`` needs at least one ID and one OOD sample.

    Args:
        tpr: true-positive rate (ID recall) at which the false-positive rate is read.
        validate_args: check the inputs of every ``update`` (costs a device sync); turn off in tight loops.
        kwargs: passed to :class:`torchmetrics.Metric`.

    Example:
        >>> metric = OODDetection()
        >>> metric.update(torch.tensor([3.0, 2.0, 0.5]), torch.ones(3, dtype=torch.bool))
        >>> metric.update(torch.tensor([1.0, 0.0]), torch.zeros(2, dtype=torch.bool))
        >>> {name: round(value.item(), 4) for name, value in metric.compute().items()}
        {'auroc': 0.8333, 'aupr_in': 0.9167, 'aupr_out': 0.8333, 'fpr95': 0.5}
    """

    is_differentiable = False
    higher_is_better = None  # mixed: AUROC/AUPR higher, FPR lower
    full_state_update = False

    scores: list[Tensor]
    is_id: list[Tensor]

    def __init__(self, tpr: float = 0.95, *, validate_args: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_fraction("tpr", tpr, low_open=True, high_open=False)
        self.tpr = tpr
        self.validate_args = validate_args
        self.fpr_key = f"fpr{round(100 * tpr)}"
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("is_id", default=[], dist_reduce_fx="cat")

    def update(self, scores: Tensor, is_id: Tensor | bool) -> None:
        """Add a batch of scores (B,) with flags (B,) that are True for in-distribution samples.

        ``is_id`` may be a single bool for a batch drawn from one loader.
        """
        if isinstance(is_id, bool):
            is_id = torch.full(scores.shape, is_id, dtype=torch.bool, device=scores.device)
        if self.validate_args:
            check_scores(scores, "scores", allow_empty=True)
            if not isinstance(is_id, Tensor) or is_id.dtype != torch.bool or is_id.shape != scores.shape:
                got = f"{tuple(is_id.shape)} {is_id.dtype}" if isinstance(is_id, Tensor) else type(is_id).__name__
                raise ValueError(f"Expected `is_id` of shape {tuple(scores.shape)} and dtype torch.bool, got {got}")
        self.scores.append(scores)
        self.is_id.append(is_id.to(torch.uint8))  # uint8: bool is not gathered by every backend

    def compute(self) -> dict[str, Tensor]:
        """AUROC, AUPR-In, AUPR-Out and FPR at ``tpr`` over every sample seen."""
        scores, is_id = dim_zero_cat(self.scores), dim_zero_cat(self.is_id).bool()
        id_scores, ood_scores = scores[is_id], scores[~is_id]
        if id_scores.numel() == 0 or ood_scores.numel() == 0:
            raise ValueError(
                f"Expected both ID and OOD samples before `compute`, got {id_scores.numel()} ID "
                f"and {ood_scores.numel()} OOD"
            )
        return {
            "auroc": ood_auroc(id_scores, ood_scores),
            "aupr_in": ood_aupr(id_scores, ood_scores, positive="id"),
            "aupr_out": ood_aupr(id_scores, ood_scores, positive="ood"),
            self.fpr_key: fpr_at_tpr(id_scores, ood_scores, tpr=self.tpr),
        }
