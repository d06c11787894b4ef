"""Deep ensembles (Lakshminarayanan et al. 2017): M independently seeded members, their mean predictive.

Members are whole classifiers (backbone and head) trained from different seeds — in :mod:`ugmm_vision.compare`
member ``m`` of seed ``s`` is trained with seed ``s + 1000·m`` (member 0 is the plain head's own run), so the
training and inference cost columns count all members. With ``ugmm-vision evaluate --method`` the members are the
``checkpoints`` given (``--ckpt_path`` is not used: every member is named in ``checkpoints``). Mutual information
and member disagreement are the OOD scores (:mod:`ugmm_vision.methods.predictive`).

Written by hand: averaging M models' softmax outputs needs no library; training the members reuses the
comparison's own runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ugmm_vision.checks import check_positive_int
from ugmm_vision.methods.base import UncertaintyMethod
from ugmm_vision.methods.predictive import sample_scores

__all__ = ["DeepEnsemble", "member_seed"]


def member_seed(seed: int, member: int) -> int:
    """The training seed of ensemble member ``member`` of a run seeded ``seed`` (member 0 keeps ``seed``).

    Example:
        >>> [member_seed(2, m) for m in range(3)]
        [2, 1002, 2002]
    """
    return seed + 1000 * member


class DeepEnsemble(UncertaintyMethod):
    """Mean predictive of independently trained members.

    Args:
        members: number of members M (5 is the usual choice; the cost grows linearly).
        checkpoints: Lightning checkpoints of the members, for ``evaluate`` (their number sets M).

    Example:
        >>> from ugmm_vision.backbones import SmallCNN
        >>> from ugmm_vision.heads import LinearHead
        >>> from ugmm_vision.models import ImageClassifier
        >>> models = [ImageClassifier(SmallCNN(in_chans=1, widths=(4,)), LinearHead, num_classes=3) for _ in "ab"]
        >>> out = DeepEnsemble(members=2).attach(models)(torch.randn(5, 1, 8, 8), scores=True)
        >>> out["logits"].shape, out["neg_mutual_information"].shape
        (torch.Size([5, 3]), torch.Size([5]))
    """

    name = "ensemble"

    def __init__(self, members: int = 5, checkpoints: Sequence[str] | None = None) -> None:
        super().__init__()
        if checkpoints is not None:
            checkpoints = [str(c) for c in checkpoints]
            if not checkpoints:
                raise ValueError("Expected `checkpoints` to name at least one checkpoint, got none")
            members = len(checkpoints)
        check_positive_int("members", members)
        self.n_members = members
        self.checkpoints = checkpoints

    @property
    def num_members(self) -> int:
        return self.n_members

    def load_members(self, template: nn.Module) -> DeepEnsemble:
        """Attach copies of ``template`` loaded from :attr:`checkpoints` (``evaluate``'s way of getting members)."""
        import copy

        from ugmm_vision.methods.checkpoint import load_weights

        if self.checkpoints is None:
            raise ValueError(
                "Expected `checkpoints` (one Lightning checkpoint per member) for an ensemble evaluated from "
                "checkpoints, got None; e.g. --method.init_args.checkpoints='[a.ckpt, b.ckpt]'"
            )
        members = []
        for i, path in enumerate(self.checkpoints):
            member = copy.deepcopy(template)
            load_weights(member, path, argument=f"checkpoints[{i}]")
            members.append(member)
        return self.attach(members)

    @torch.no_grad()
    def predict_images(self, images: Tensor) -> dict[str, Tensor]:
        log_probs = torch.stack([m(images).log_softmax(dim=-1) for m in self.members])  # (M, B, C)
        return sample_scores(log_probs)
