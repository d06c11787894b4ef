"""``ImageClassifier``: backbone + head + cross-entropy, with accuracy and calibration metrics per stage."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from lightning import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError

from ugmm_vision.functional import hidden_density_sum
from ugmm_vision.metrics import NegativeLogLikelihood, OODDetection

__all__ = ["HeadFactory", "ImageClassifier"]

HeadFactory = Callable[[int, int], nn.Module]
"""Builds a head from ``(in_features, num_classes)``; how configs pass a head before the sizes are known."""


class ImageClassifier(LightningModule):
    """Image classifier: ``logits = head(backbone(images))``, trained with cross-entropy.

    The module composes; the maths lives in the head, the backbone and the metrics. Evaluation loaders are named
    by the data module (``"id"``, ``"ood"``): the in-distribution set updates the stage's metrics, every set
    contributes max-softmax scores to the OOD AUROC (in-distribution = positive).

    Args:
        backbone: feature extractor exposing ``num_features`` (see :mod:`ugmm_vision.backbones`).
        head: a head module, or a factory called as ``head(backbone.num_features, num_classes)`` — configs give a
            head class with its other arguments and let the sizes be filled in.
        num_classes: number of classes; required when ``head`` is a factory (the CLI links it from the data).
        optimizer: optimiser factory called with the parameter groups (default AdamW, lr 1e-3).
        lr_scheduler: optional scheduler factory called with the optimiser, stepped per epoch.
        backbone_lr: learning rate of the backbone's parameters (None: the optimiser's lr). Fine-tuning a
            pretrained backbone usually wants it 10–100× below the head's.
        head_lr: learning rate of the head's parameters (None: the optimiser's lr).
        freeze_backbone_epochs: train only the head for this many epochs (a linear probe, backbone in eval mode
            and without gradients), then fine-tune everything.
        calibration_bins: number of bins of the expected calibration error.

    Example:
        >>> from ugmm_vision.backbones import SmallCNN
        >>> from ugmm_vision.heads import UGMMHead
        >>> model = ImageClassifier(SmallCNN(in_chans=1), UGMMHead, num_classes=10)
        >>> model(torch.randn(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module | HeadFactory,
        num_classes: int | None = None,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
        backbone_lr: float | None = None,
        head_lr: float | None = None,
        freeze_backbone_epochs: int = 0,
        calibration_bins: int = 15,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["backbone", "head"])
        in_features = getattr(backbone, "num_features", None)
        if not isinstance(in_features, int):
            raise ValueError(f"Expected `backbone` to expose an integer `num_features`, got {type(backbone).__name__}")
        if not isinstance(head, nn.Module):
            if num_classes is None:
                raise ValueError("Expected `num_classes` when `head` is a factory, got None")
            head = head(in_features, num_classes)
        head_in = getattr(head, "in_features", in_features)
        if head_in != in_features:
            raise ValueError(
                f"Expected the head's `in_features` to equal the backbone's num_features={in_features}, got {head_in}"
            )
        head_classes = getattr(head, "num_classes", num_classes)
        if num_classes is not None and head_classes != num_classes:
            raise ValueError(
                f"Expected the head's `num_classes` to equal num_classes={num_classes}, got {head_classes}"
            )
        if num_classes is None:
            num_classes = head_classes
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"Expected `num_classes` to be an integer ≥ 2, got {num_classes!r}")
        if freeze_backbone_epochs < 0:
            raise ValueError(f"Expected `freeze_backbone_epochs` ≥ 0, got {freeze_backbone_epochs}")
        self.backbone = backbone
        self.head = head
        self.num_classes = num_classes
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.backbone_lr = backbone_lr
        self.head_lr = head_lr
        self.freeze_backbone_epochs = freeze_backbone_epochs
        self._backbone_frozen = False

        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(num_classes, average="micro"),
                "nll": NegativeLogLikelihood(),
                "cal/ece": MulticlassCalibrationError(num_classes, n_bins=calibration_bins, norm="l1"),
            }
        )
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.test_ood = OODDetection()

    # -- forward -----------------------------------------------------------------------------------------------
    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.backbone(images))

    # -- backbone freezing ---------------------------------------------------------------------------------------
    @property
    def backbone_frozen(self) -> bool:
        """Whether the backbone is frozen now (during the first ``freeze_backbone_epochs`` epochs)."""
        return self._backbone_frozen

    def _set_backbone_frozen(self, frozen: bool) -> None:
        self._backbone_frozen = frozen
        self.backbone.requires_grad_(not frozen)
        self.backbone.train(self.training and not frozen)

    def train(self, mode: bool = True) -> ImageClassifier:
        # Lightning switches the whole module to train mode after each validation; a frozen backbone must stay in
        # eval mode so its normalisation statistics do not drift during the linear probe.
        super().train(mode)
        if self._backbone_frozen:
            self.backbone.eval()
        return self

    def on_train_epoch_start(self) -> None:
        self._set_backbone_frozen(self.current_epoch < self.freeze_backbone_epochs)

    # -- steps -----------------------------------------------------------------------------------------------
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, targets = batch
        if self._backbone_frozen:
            with torch.no_grad():
                features = self.backbone(images)
            logits = self.head(features)
        else:
            logits = self(images)
        loss = F.cross_entropy(logits, targets)
        self.train_metrics.update(logits.detach(), targets)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(targets))
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, targets = batch
        logits = self(images)
        self.val_metrics.update(logits, targets)
        self.log_dict(self.val_metrics, on_step=False, on_epoch=True, prog_bar=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        images, targets = batch
        logits = self(images)
        name = self._eval_set_name(dataloader_idx)
        if name == "id" or name.startswith("ood"):
            msp = logits.softmax(dim=-1).amax(dim=-1)  # (B,) max softmax probability, higher = more in-distribution
            self.test_ood.update(msp, name == "id")
        if name == "id":
            self.test_metrics.update(logits, targets)

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()
        if self._has_ood_set():
            self.log("test/ood/auroc_msp", self.test_ood.compute()["auroc"])
        self.test_ood.reset()

    def predict_step(self, batch: tuple[Tensor, ...] | Tensor, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """Logits, the batch's targets when it has them, and for stacked uGMM heads the hidden log-density sum.

        The evaluation report (:mod:`ugmm_vision.report`) and batch prediction are built from these outputs.
        """
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        features = self.backbone(images)
        out: dict[str, Tensor] = {}
        layer_outputs = self.head.forward_hidden(features) if hasattr(self.head, "forward_hidden") else None
        if layer_outputs is not None and len(layer_outputs) > 1:
            out["logits"] = layer_outputs[-1]
            out["hidden_density"] = hidden_density_sum(layer_outputs[:-1])  # (B,)
        else:
            out["logits"] = layer_outputs[-1] if layer_outputs is not None else self.head(features)
        if isinstance(batch, (tuple, list)) and len(batch) > 1:
            out["targets"] = batch[1]
        return out

    def _eval_set_name(self, dataloader_idx: int) -> str:
        loaders = self.trainer.test_dataloaders if self._trainer is not None else None
        if isinstance(loaders, dict):
            return list(loaders)[dataloader_idx]
        return "id" if dataloader_idx == 0 else f"set_{dataloader_idx}"

    def _has_ood_set(self) -> bool:
        loaders = self.trainer.test_dataloaders
        return isinstance(loaders, dict) and any(name.startswith("ood") for name in loaders)

    # -- optimisation ----------------------------------------------------------------------------------------
    def configure_optimizers(self):
        groups = []
        for module, lr in ((self.backbone, self.backbone_lr), (self.head, self.head_lr)):
            group: dict = {"params": list(module.parameters())}
            if lr is not None:
                group["lr"] = lr
            groups.append(group)
        optimizer = self.optimizer_factory(groups)
        if self.lr_scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.lr_scheduler_factory(optimizer)}
