"""One comparison run: what it trains with (:class:`RunContext`), its trainer, its training, its loaders, its timing.

:mod:`ugmm_vision.compare.runner` runs one of these per head and seed; :mod:`ugmm_vision.compare.methods` trains
an uncertainty method's further members the same way.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass
from typing import Literal

import lightning as L
import torch
from lightning import LightningDataModule, Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from torch import nn

from ugmm_vision.backbones.identity import IdentityBackbone
from ugmm_vision.heads import HeadFactory
from ugmm_vision.models import ImageClassifier
from ugmm_vision.trainers import quiet_trainer

__all__ = ["ComparisonMode", "RunContext", "eval_loaders", "latency_per_image", "run_trainer", "train_model"]

ComparisonMode = Literal["frozen", "finetune"]


def run_trainer(
    max_epochs: int, trainer_kwargs: dict, logger: Logger | bool = False, callbacks: list[Callback] | None = None
) -> Trainer:
    """The trainer of one run: quiet, one device, no sanity check; ``trainer_kwargs`` from the comparison."""
    settings = {"accelerator": "auto", "devices": 1, **trainer_kwargs}
    return quiet_trainer(max_epochs=max_epochs, logger=logger, callbacks=callbacks, num_sanity_val_steps=0, **settings)


@dataclass
class RunContext:
    """What one comparison run trains with, so that every run (and every method's member) is trained alike."""

    template: ImageClassifier
    head_factory: HeadFactory
    seed: int
    data: LightningDataModule
    mode: ComparisonMode
    max_epochs: int
    trainer_kwargs: dict


def train_model(
    run: RunContext, logger: Logger | bool = False, callbacks: list[Callback] | None = None
) -> tuple[ImageClassifier, Trainer, float]:
    """Train one model as every comparison run does; returns it, its trainer and the seconds per epoch."""
    L.seed_everything(run.seed, verbose=False)
    template = run.template
    in_features = template.backbone.num_features
    head = run.head_factory(in_features, template.num_classes)
    backbone = IdentityBackbone(in_features) if run.mode == "frozen" else copy.deepcopy(template.backbone)
    model = ImageClassifier(
        backbone,
        head,
        num_classes=template.num_classes,
        # As specs where the template has them: the run's hyper-parameters stay plain (picklable) data.
        optimizer=template.hparams.get("optimizer", template.optimizer_factory),
        lr_scheduler=template.hparams.get("lr_scheduler", template.lr_scheduler_factory),
        backbone_lr=template.backbone_lr,
        head_lr=template.head_lr,
        freeze_backbone_epochs=0 if run.mode == "frozen" else template.freeze_backbone_epochs,
        filter_bias_and_bn=template.filter_bias_and_bn,
    )
    trainer = run_trainer(run.max_epochs, run.trainer_kwargs, logger=logger, callbacks=callbacks)
    start = time.perf_counter()
    trainer.fit(model, run.data)
    return model, trainer, (time.perf_counter() - start) / run.max_epochs


def eval_loaders(data: LightningDataModule, shift_kwargs: dict | None) -> dict:
    """The named sets every run is evaluated on, plus ``"val"`` (temperature scaling, conformal calibration)."""
    loaders = dict(data.test_dataloader())
    if shift_kwargs is not None and hasattr(data, "shift_dataloaders"):
        loaders.update(data.shift_dataloaders(**shift_kwargs))
    loaders["val"] = data.val_dataloader()
    return loaders


@torch.no_grad()
def latency_per_image(module: nn.Module, batch: torch.Tensor, device: torch.device, repeats: int = 20) -> float:
    """Median seconds per image of ``module(batch)`` in eval mode on ``device`` (after two warm-up calls).

    Lightning moves a model back to the CPU when ``fit`` ends; it is timed on the device it trained on, then put
    back where it was.
    """
    home = next(module.parameters(), torch.empty(0)).device
    module.eval().to(device)
    batch = batch.to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(2):
        module(batch)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        module(batch)
        sync()
        times.append(time.perf_counter() - start)
    module.to(home)
    return statistics.median(times) / len(batch)
