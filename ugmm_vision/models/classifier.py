"""``ImageClassifier``: backbone + head + cross-entropy, with accuracy and calibration metrics per stage."""

from __future__ import annotations

import math
from typing import Self

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError

from ugmm_vision.checks import check_bool, check_positive_int, is_real
from ugmm_vision.heads import HeadFactory, head_outputs
from ugmm_vision.metrics import NegativeLogLikelihood, OODDetection
from ugmm_vision.models.checkpoints import CheckedLightningModule
from ugmm_vision.models.freezing import BackboneFreezer
from ugmm_vision.models.inputs import BadBatch, BatchGuard, as_model_dtype
from ugmm_vision.models.param_groups import named_parameter_groups
from ugmm_vision.models.specs import build_backbone_and_head, standalone_hparams
from ugmm_vision.models.trust import factory_from_spec

__all__ = ["BadBatch", "HeadFactory", "ImageClassifier"]  # BadBatch, HeadFactory: re-exported where users had them


class ImageClassifier(CheckedLightningModule):
    """Image classifier: ``logits = head(backbone(images))``, trained with cross-entropy.

    The module composes; the maths lives in the head, the backbone and the metrics. Evaluation loaders are named
    by the data module (``"id"``, ``"ood"``): the in-distribution set updates the stage's metrics, every set
    contributes max-softmax scores to the OOD AUROC (in-distribution = positive).

    Args:
        backbone: feature extractor exposing ``num_features`` (see :mod:`ugmm_vision.backbones`), or its
            ``{"class_path", "init_args"}`` spec.
        head: a head module, or a factory called as ``head(backbone.num_features, num_classes)`` — configs give a
            head class with its other arguments and let the sizes be filled in — or the factory's spec.
        num_classes: number of classes; required when ``head`` is a factory (the CLI links it from the data).
        optimizer: optimiser factory called with the parameter groups (default AdamW, lr 1e-3).
        lr_scheduler: optional scheduler factory called with the optimiser, stepped per epoch.
        backbone_lr: learning rate of the backbone's parameters (None: the optimiser's lr). Fine-tuning a
            pretrained backbone usually wants it 10–100× below the head's.
        head_lr: learning rate of the head's parameters (None: the optimiser's lr).
        filter_bias_and_bn: no weight decay for norms, biases, uGMM parameters and timm's ``no_weight_decay()``
            names (timm's rule; :mod:`ugmm_vision.models.param_groups`); False decays every parameter.
        freeze_backbone_epochs: train only the head for this many epochs (a linear probe, backbone in eval mode
            and without gradients; :class:`~ugmm_vision.models.freezing.BackboneFreezer`), then fine-tune everything.
        calibration_bins: number of bins of the expected calibration error.
        bad_batch: what a training batch whose images hold NaN or Inf gets: ``"raise"`` — a ``ValueError``
            naming ``images``; ``"skip"`` — a warning with the count of skipped batches, and the step is skipped
            (single-process training only: under DDP the other processes would wait for the skipped step).
            Evaluation batches always raise, so that a report covers its whole set.
        compile: compile the backbone and the head with ``torch.compile(fullgraph=True)`` (each in place, with
            ``nn.Module.compile``, so parameter names and checkpoints are unchanged). One graph each, mixing
            dropout included; the first steps are slower while the graphs compile.

    Every step checks its batch before use (:mod:`ugmm_vision.models.inputs`): rank, channels and image size
    against what the backbone declares (``in_chans``, ``image_size``, ``min_size``), a floating dtype, and finite
    values (one reduction per batch). ``setup`` checks that a data module's ``num_classes`` equals the model's;
    checkpoint loads name the file when it is truncated or foreign (:mod:`ugmm_vision.models.checkpoints`).

    Checkpoints stand alone: the backbone and head are saved as ``{"class_path", "init_args"}`` specs with the
    other hyper-parameters (:mod:`ugmm_vision.models.specs`), so ``ImageClassifier.load_from_checkpoint(path)``
    rebuilds the model with no other argument. The optimiser's parameter groups are named ``backbone`` and
    ``head`` (plus ``*_no_decay``), as Lightning's ``LearningRateMonitor`` shows them.

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
        filter_bias_and_bn: bool = True,
        freeze_backbone_epochs: int = 0,
        calibration_bins: int = 15,
        bad_batch: BadBatch = "raise",
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["backbone", "head"])  # modules are not deep-copied into hparams
        standalone_hparams(self.hparams, type(self), backbone=backbone, head=head)  # checkpoints rebuild the model
        self.backbone, self.head, self.num_classes = build_backbone_and_head(backbone, head, num_classes)
        self.hparams["num_classes"] = self.num_classes  # a head given as a module still leaves the count
        self.freezer = BackboneFreezer(self.backbone, freeze_backbone_epochs)
        if check_bool("compile", compile):  # in place: parameter names and checkpoints are unchanged
            self.backbone.compile(fullgraph=True)
            self.head.compile(fullgraph=True)
        self.batch_guard = BatchGuard(self.backbone, bad_batch)
        for name, lr in (("backbone_lr", backbone_lr), ("head_lr", head_lr)):
            if lr is not None and not (is_real(lr) and 0 < lr < math.inf):
                raise ValueError(f"Expected `{name}` to be a positive finite learning rate or None, got {lr!r}")
        self.backbone_lr, self.head_lr, self.filter_bias_and_bn = backbone_lr, head_lr, filter_bias_and_bn
        self.optimizer_factory = factory_from_spec(optimizer, argument="optimizer", base=torch.optim.Optimizer)
        scheduler_base = torch.optim.lr_scheduler.LRScheduler
        self.lr_scheduler_factory = factory_from_spec(lr_scheduler, argument="lr_scheduler", base=scheduler_base)
        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(self.num_classes, average="micro"),
                "nll": NegativeLogLikelihood(),
                "cal/ece": MulticlassCalibrationError(
                    self.num_classes, n_bins=check_positive_int("calibration_bins", calibration_bins), norm="l1"
                ),
            }
        )
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.test_ood = OODDetection()

    # -- checks ------------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        super().setup(stage)  # checked checkpoint loads
        datamodule = getattr(self.trainer, "datamodule", None)
        try:
            data_classes = getattr(datamodule, "num_classes", None)
        except NotImplementedError:
            data_classes = None
        if isinstance(data_classes, int) and data_classes != self.num_classes:
            raise ValueError(
                f"Expected `num_classes`={self.num_classes} (the head's outputs) to equal the data's number of "
                f"classes, got {data_classes} from {type(datamodule).__name__}.num_classes"
            )
        self.batch_guard.check_world_size(self.trainer.world_size)

    def check_batch(self, images: Tensor, stage: str) -> bool:
        """Check a batch's images (:class:`~ugmm_vision.models.inputs.BatchGuard`); False: skip this batch."""
        return self.batch_guard.check(images, stage)

    @property
    def skipped_batches(self) -> int:
        """Training batches skipped for NaN or Inf pixels in this fit (``bad_batch="skip"``)."""
        return self.batch_guard.skipped

    def on_fit_start(self) -> None:
        self.batch_guard.skipped = 0

    def on_train_epoch_end(self) -> None:
        if self.batch_guard.bad_batch == "skip":
            self.log("train/skipped_batches", float(self.skipped_batches))

    # -- forward, and the backbone frozen for the first epochs --------------------------------------------------
    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.backbone(as_model_dtype(images, self)))  # float64/float16 pixels converted

    @property
    def backbone_frozen(self) -> bool:
        """Whether the backbone is frozen now (during the first ``freeze_backbone_epochs`` epochs)."""
        return self.freezer.frozen

    @property
    def freeze_backbone_epochs(self) -> int:
        """Number of first epochs with the backbone frozen."""
        return self.freezer.epochs

    def train(self, mode: bool = True) -> Self:
        super().train(mode)
        self.freezer.hold()  # a frozen backbone stays in eval mode
        return self

    def on_train_epoch_start(self) -> None:
        self.freezer.update(self.current_epoch, self.training)

    # -- steps -----------------------------------------------------------------------------------------------
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor | None:
        images, targets = batch
        if not self.check_batch(images, "training"):
            return None  # Lightning skips the optimisation step
        logits = self.head(self.freezer.features(as_model_dtype(images, self)))
        loss = F.cross_entropy(logits, targets)
        self.train_metrics.update(logits.detach(), targets)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(targets))
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, targets = batch
        self.check_batch(images, "validation")
        logits = self(images)
        self.val_metrics.update(logits, targets)
        self.log_dict(self.val_metrics, on_step=False, on_epoch=True, prog_bar=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        images, targets = batch
        self.check_batch(images, "test")
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
        """Logits, the batch's targets when it has them, and for stacked density heads the hidden log-density sum
        (:func:`~ugmm_vision.heads.head_outputs`).

        The evaluation report (:mod:`ugmm_vision.report`) and batch prediction are built from these outputs.
        """
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        self.check_batch(images, "predict")
        out = head_outputs(self.head, self.backbone(as_model_dtype(images, self)))
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
        parts = {"backbone": (self.backbone, self.backbone_lr), "head": (self.head, self.head_lr)}
        groups = named_parameter_groups(parts, filter_bias_and_bn=self.filter_bias_and_bn)
        optimizer = self.optimizer_factory(groups)
        if self.lr_scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.lr_scheduler_factory(optimizer)}
