"""``BackboneFreezer``: train only the head for the first epochs (a linear probe), then fine-tune everything."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ugmm_vision.checks import check_int

__all__ = ["BackboneFreezer"]


class BackboneFreezer:
    """Keeps a backbone frozen for the first ``epochs`` training epochs: no gradients, eval mode, no autograd graph.

    The module that owns it calls :meth:`update` when a training epoch starts, :meth:`hold` after each ``train()``
    (Lightning puts the whole module back in train mode after every validation; a frozen backbone stays in eval
    mode so that its normalisation statistics do not drift during the probe) and :meth:`features` in the training
    step. The frozen parameters stay in the optimiser (:mod:`ugmm_vision.models.param_groups`), so they train once
    thawed.

    Args:
        backbone: the module to freeze.
        epochs: number of epochs it stays frozen (0: never).

    Example:
        >>> backbone = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
        >>> freezer = BackboneFreezer(backbone, epochs=1)
        >>> freezer.update(epoch=0, training=True)
        >>> freezer.frozen, backbone.training, backbone[0].weight.requires_grad
        (True, False, False)
        >>> freezer.update(epoch=1, training=True)
        >>> freezer.frozen, backbone.training, backbone[0].weight.requires_grad
        (False, True, True)
    """

    def __init__(self, backbone: nn.Module, epochs: int) -> None:
        self.backbone = backbone
        self.epochs = check_int("freeze_backbone_epochs", epochs, low=0)
        self.frozen = False

    def update(self, epoch: int, training: bool) -> None:
        """Freeze or thaw for ``epoch``; ``training`` is the owner's mode, which a thawed backbone follows."""
        self.set_frozen(epoch < self.epochs, training)

    def set_frozen(self, frozen: bool, training: bool = True) -> None:
        """Freeze (no gradients, eval mode) or thaw (gradients, the owner's ``training`` mode) the backbone."""
        self.frozen = frozen
        self.backbone.requires_grad_(not frozen)
        self.backbone.train(training and not frozen)

    def hold(self) -> None:
        """Put a frozen backbone back in eval mode (after the owner's ``train()``)."""
        if self.frozen:
            self.backbone.eval()

    def features(self, images: Tensor) -> Tensor:
        """The backbone's features; without an autograd graph while frozen."""
        if not self.frozen:
            return self.backbone(images)
        with torch.no_grad():
            return self.backbone(images)
