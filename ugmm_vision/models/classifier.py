"""``ImageClassifier``: backbone + head + cross-entropy, with accuracy and calibration metrics per stage."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Literal

import torch
import torch.nn.functional as F
from lightning import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError

from ugmm_vision.functional import hidden_density_sum
from ugmm_vision.metrics import NegativeLogLikelihood, OODDetection
from ugmm_vision.models.checkpoints import (
    CheckedCheckpointIO,
    check_checkpoint_file,
    check_state_dict_fits,
    factory_from_spec,
    factory_spec,
)
from ugmm_vision.models.inputs import as_model_dtype, check_image_batch, count_nonfinite_samples
from ugmm_vision.models.param_groups import named_parameter_groups
from ugmm_vision.models.specs import module_from_spec, module_spec

__all__ = ["BadBatch", "HeadFactory", "ImageClassifier"]

BadBatch = Literal["raise", "skip"]

HeadFactory = Callable[[int, int], nn.Module]
"""Builds a head from ``(in_features, num_classes)``; how configs pass a head before the sizes are known."""


class ImageClassifier(LightningModule):
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
            and without gradients), then fine-tune everything.
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
    values (one reduction per batch). ``setup`` checks that a data module's ``num_classes`` equals the model's, and
    makes the trainer's checkpoint loads name the file when it is truncated or foreign
    (:mod:`ugmm_vision.models.checkpoints`).

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
        for key in ("optimizer", "lr_scheduler"):  # classes as specs: the checkpoint loads with weights_only=True
            if key in self.hparams:
                self.hparams[key] = factory_spec(self.hparams[key])
        # Backbone and head as specs, when their arguments are known: the checkpoint rebuilds the model (the CLI
        # puts its configuration's specs in, ugmm_vision/cli.py). The CLI's jsonargparse instantiator is dropped:
        # load_from_checkpoint builds through __init__, which imports the specs' classes through the allow-list
        # (ugmm_vision/models/checkpoints.py).
        for key, part in (("backbone", backbone), ("head", head)):
            spec = module_spec(part)
            if spec is not None:  # else loading the checkpoint asks for it
                self.hparams[key] = spec
        self.hparams.pop("_instantiator", None)
        self.hparams["_class_path"] = f"{type(self).__module__}.{type(self).__qualname__}"
        for name, part in (("backbone", backbone), ("head", head)):
            if part is None:
                raise ValueError(f"Expected `{name}` to be a module, a factory or a spec, got None")
        if isinstance(backbone, Mapping):
            backbone = module_from_spec(backbone, argument="backbone")
        if isinstance(head, Mapping):
            head = module_from_spec(head, argument="head", instantiate=False)
        optimizer = factory_from_spec(optimizer, argument="optimizer", base=torch.optim.Optimizer)
        scheduler_base = torch.optim.lr_scheduler.LRScheduler
        lr_scheduler = factory_from_spec(lr_scheduler, argument="lr_scheduler", base=scheduler_base)
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
        self.hparams["num_classes"] = num_classes  # a head given as a module still leaves the count in checkpoints
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"Expected `num_classes` to be an integer ≥ 2, got {num_classes!r}")
        if freeze_backbone_epochs < 0:
            raise ValueError(f"Expected `freeze_backbone_epochs` ≥ 0, got {freeze_backbone_epochs}")
        if isinstance(calibration_bins, bool) or not isinstance(calibration_bins, int) or calibration_bins < 1:
            raise ValueError(f"Expected `calibration_bins` to be a positive integer, got {calibration_bins!r}")
        for name, lr in (("backbone_lr", backbone_lr), ("head_lr", head_lr)):
            if lr is not None and not (isinstance(lr, (int, float)) and 0 < lr < math.inf):
                raise ValueError(f"Expected `{name}` to be a positive finite learning rate or None, got {lr!r}")
        if bad_batch not in ("raise", "skip"):
            raise ValueError(f"Expected `bad_batch` to be 'raise' or 'skip', got {bad_batch!r}")
        self.backbone = backbone
        self.head = head
        self.num_classes = num_classes
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.backbone_lr = backbone_lr
        self.head_lr = head_lr
        self.filter_bias_and_bn = filter_bias_and_bn
        self.freeze_backbone_epochs = freeze_backbone_epochs
        self.bad_batch = bad_batch
        self.skipped_batches = 0
        self._backbone_frozen = False
        if not isinstance(compile, bool):
            raise ValueError(f"Expected `compile` to be a bool, got {compile!r}")
        if compile:
            self.backbone.compile(fullgraph=True)
            self.head.compile(fullgraph=True)

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

    # -- checks ------------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
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
        if self.bad_batch == "skip" and self.trainer.world_size > 1:
            raise ValueError(
                "Expected `bad_batch`='raise' when training on several processes (a batch skipped by one process "
                f"would leave the others waiting), got 'skip' with world_size={self.trainer.world_size}"
            )
        strategy = self.trainer.strategy
        if not isinstance(strategy.checkpoint_io, CheckedCheckpointIO):
            strategy.checkpoint_io = CheckedCheckpointIO(strategy.checkpoint_io)

    def check_batch(self, images: Tensor, stage: str) -> bool:
        """Check a batch's images; False means "skip this batch" (training with ``bad_batch="skip"`` only).

        Raises:
            ValueError: naming ``images`` — wrong rank, channels, size or dtype for the backbone, or NaN/Inf
                values (outside training, or with ``bad_batch="raise"``).
        """
        check_image_batch(images, self.backbone)
        n_bad = count_nonfinite_samples(images)
        if n_bad == 0:
            return True
        what = f"{n_bad} of {images.shape[0]} images of this {stage} batch hold NaN or Inf"
        if stage == "training" and self.bad_batch == "skip":
            self.skipped_batches += 1
            warnings.warn(
                f"Skipped a training batch: {what} (bad_batch='skip'); {self.skipped_batches} batch(es) skipped so far",
                UserWarning,
                stacklevel=2,
            )
            return False
        raise ValueError(
            f"Expected `images` with finite values, got {what}; check the data and its normalisation"
            + (" (or pass bad_batch='skip' to skip such training batches)" if stage == "training" else "")
        )

    def on_fit_start(self) -> None:
        self.skipped_batches = 0

    def on_train_epoch_end(self) -> None:
        if self.bad_batch == "skip":
            self.log("train/skipped_batches", float(self.skipped_batches))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Under a Trainer (test/evaluate --ckpt_path): a checkpoint of another model fails here, naming the file.
        # load_from_checkpoint (no trainer) reports the same through its own check below.
        if self._trainer is not None and self.strict_loading:
            check_state_dict_fits(self, checkpoint["state_dict"], self.trainer.ckpt_path)

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | Path | IO,
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        weights_only: bool | None = None,
        **kwargs: Any,
    ) -> ImageClassifier:
        """Lightning's ``load_from_checkpoint``, with errors that name the file when it is missing, truncated,
        foreign, or a checkpoint of another model. The file is only read; a failure leaves it unchanged.

        The checkpoint rebuilds its backbone and head from their stored specs; ``backbone=``/``head=`` override
        them (and are needed for a checkpoint whose backbone or head had no spec, or one saved before specs were
        stored), e.g. ``ImageClassifier.load_from_checkpoint(path, backbone=SmallCNN(in_chans=1), head=UGMMHead)``.
        """
        check_checkpoint_file(checkpoint_path)
        try:
            return super().load_from_checkpoint(
                checkpoint_path,
                map_location=map_location,
                hparams_file=hparams_file,
                strict=strict,
                weights_only=weights_only,
                **kwargs,
            )
        except TypeError as err:
            missing = [name for name in ("backbone", "head") if f"'{name}'" in str(err) and name not in kwargs]
            if "missing" not in str(err) or not missing:
                raise
            raise ValueError(
                f"Expected `checkpoint_path` to hold the {' and '.join(missing)} spec, got {str(checkpoint_path)!r}, "
                "saved from a model whose " + " and ".join(missing) + " did not record its constructor arguments "
                "(or before specs were stored): pass "
                + ", ".join(f"{name}=..." for name in missing)
                + " to load_from_checkpoint. The file was left unchanged."
            ) from err
        except RuntimeError as err:
            if "Error(s) in loading state_dict" not in str(err):
                raise
            detail = " ".join(str(err).split())[:300]
            raise ValueError(
                f"Expected `checkpoint_path` to be a checkpoint of this model, got {str(checkpoint_path)!r}: "
                f"{detail} (was it saved with another backbone, head or number of classes?). "
                "The file was left unchanged."
            ) from err

    # -- forward -----------------------------------------------------------------------------------------------
    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.backbone(as_model_dtype(images, self)))  # float64/float16 pixels converted

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
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor | None:
        images, targets = batch
        if not self.check_batch(images, "training"):
            return None  # Lightning skips the optimisation step
        if self._backbone_frozen:
            with torch.no_grad():
                features = self.backbone(as_model_dtype(images, self))
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
        """Logits, the batch's targets when it has them, and for stacked uGMM heads the hidden log-density sum.

        The evaluation report (:mod:`ugmm_vision.report`) and batch prediction are built from these outputs.
        """
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        self.check_batch(images, "predict")
        features = self.backbone(as_model_dtype(images, self))
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
        parts = {"backbone": (self.backbone, self.backbone_lr), "head": (self.head, self.head_lr)}
        groups = named_parameter_groups(parts, filter_bias_and_bn=self.filter_bias_and_bn)
        optimizer = self.optimizer_factory(groups)
        if self.lr_scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.lr_scheduler_factory(optimizer)}
