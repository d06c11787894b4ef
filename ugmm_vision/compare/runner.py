"""``run_comparison``: train every head on the same backbone, data and budget for several seeds, then evaluate.

Fairness rules: every run starts from the same backbone weights (a deep copy of the configured backbone, so a
pretrained backbone stays pretrained), the same data split, optimiser, schedule and number of epochs; seeds change
the head's initialisation, the batch order and dropout. In ``"frozen"`` mode the backbone's features are computed
once (training augmentation is therefore off) and only heads are trained — minutes even for large backbones.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

import torch
from lightning import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, Logger
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from ugmm_vision.checks import check_choice, check_positive_int
from ugmm_vision.compare.methods import run_methods
from ugmm_vision.compare.training import (
    ComparisonMode,
    RunContext,
    eval_loaders,
    latency_per_image,
    train_model,
)
from ugmm_vision.data.features import FeatureDataModule, predict_features
from ugmm_vision.heads import HeadFactory, count_parameters, head_flops_per_image, is_density_head
from ugmm_vision.methods import UncertaintyMethod
from ugmm_vision.models import ImageClassifier
from ugmm_vision.report.build import build_report
from ugmm_vision.report.collect import collect_outputs
from ugmm_vision.report.scalars import report_scalars
from ugmm_vision.trainers import quiet_trainer

# ComparisonMode, RunContext and train_model are defined in compare/training.py and re-exported here.
__all__ = ["ComparisonMode", "RunContext", "run_comparison", "train_model"]


class _RunProgress(Callback):
    """Epochs and steps of the run in training, as a second task of the comparison's progress display.

    Written here rather than using Lightning's progress bars: those open a display of their own (TQDM or Rich),
    which would fight the comparison's bar of runs; this callback updates a task of the same Rich display.
    """

    def __init__(self, bar: Progress, task: TaskID, label: str) -> None:
        self.bar, self.task, self.label = bar, task, label

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        batches = trainer.num_training_batches
        total = trainer.max_epochs * batches if batches != float("inf") else None
        self.bar.reset(self.task, total=total, description=f"  {self.label}: training")

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        epoch = f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
        step = f"step {batch_idx + 1}/{trainer.num_training_batches}"
        self.bar.update(self.task, advance=1, description=f"  {self.label}: {epoch}, {step}")

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.bar.update(self.task, description=f"  {self.label}: evaluating")


def _cache_features(
    template: ImageClassifier,
    datamodule: LightningDataModule,
    shift_kwargs: dict | None,
    trainer_kwargs: dict,
    progress: bool,
    images_only: bool = False,
):
    """The backbone's features of every set, computed once with ``Trainer.predict``: on the accelerator and
    precision the comparison's trainer was given, with Lightning's progress bar. With ``images_only`` the
    "features" are the transformed images themselves (``cache_images``: decoded once, not once per run)."""
    datamodule.prepare_data()
    datamodule.setup("fit")
    datamodule.setup("test")
    backbone = torch.nn.Identity() if images_only else copy.deepcopy(template.backbone)
    settings = {"accelerator": "auto", "devices": 1, **trainer_kwargs}
    settings = {k: v for k, v in settings.items() if not k.startswith("limit_")}  # every sample is needed
    trainer = quiet_trainer(enable_progress_bar=progress, **settings)
    extract = lambda loader: predict_features(trainer, backbone, loader)  # noqa: E731
    shift_sets = {}
    if shift_kwargs is not None and hasattr(datamodule, "shift_dataloaders"):
        shift_sets = {k: extract(v) for k, v in datamodule.shift_dataloaders(**shift_kwargs).items()}
    return FeatureDataModule(
        train_set=extract(datamodule.train_dataloader()),
        val_set=extract(datamodule.val_dataloader()),
        test_sets={name: extract(loader) for name, loader in datamodule.test_dataloader().items()},
        shift_sets=shift_sets,
        num_classes=template.num_classes,
        batch_size=getattr(datamodule, "batch_size", 256),
    )


def _run_one(
    run: RunContext,
    shift_kwargs: dict | None,
    n_bins: int,
    logger: Logger | bool = False,
    callbacks: list[Callback] | None = None,
) -> dict:
    model, trainer, train_seconds_per_epoch = train_model(run, logger, callbacks)
    data, mode = run.data, run.mode
    head, in_features = model.head, run.template.backbone.num_features
    loaders = eval_loaders(data, shift_kwargs)
    outputs = collect_outputs(trainer, model, loaders)
    val_outputs = outputs.pop("val")
    is_ugmm = is_density_head(head)
    report = build_report(outputs, val_outputs, density_scores=is_ugmm, n_bins=n_bins)

    images = next(iter(data.test_dataloader()["id"]))[0][:256]
    device = trainer.strategy.root_device  # the device it trained on
    with torch.no_grad():
        features = images if mode == "frozen" else model.backbone.eval()(images)
    if trainer.logger:
        trainer.logger.log_metrics(report_scalars(report, "test/"), step=trainer.global_step)
        trainer.logger.save()
    return {
        "report": report,
        "params": count_parameters(head),
        "flops": head_flops_per_image(head, in_features),
        "train_s_per_epoch": train_seconds_per_epoch,
        "head_latency_us": 1e6 * latency_per_image(model.head, features, device),
        "model_latency_us": None if mode == "frozen" else 1e6 * latency_per_image(model, images, device),
        "is_ugmm": is_ugmm,
        "model": model,  # for the uncertainty methods built on this run; popped by run_comparison
    }


def run_comparison(
    template: ImageClassifier,
    datamodule: LightningDataModule,
    heads: dict[str, HeadFactory],
    seeds: Sequence[int] = (0, 1, 2),
    mode: ComparisonMode = "finetune",
    max_epochs: int = 10,
    trainer_kwargs: dict | None = None,
    shift: bool = True,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = (1, 3, 5),
    n_bins: int = 15,
    progress: bool = True,
    log_dir: str | Path | None = None,
    methods: dict[str, UncertaintyMethod] | None = None,
    method_heads: Sequence[str] | None = None,
    cache_images: bool = False,
) -> list[dict]:
    """Train and evaluate every head for every seed; returns one row of results per run.

    Args:
        template: an :class:`ImageClassifier` giving the backbone, optimiser, schedule and learning rates (its own
            head is not used).
        datamodule: the data; its named test sets are evaluated.
        heads: head factories by display name, each called as ``factory(num_features, num_classes)``.
        seeds: one run per seed and head.
        mode: ``"frozen"`` trains heads on cached backbone features; ``"finetune"`` trains backbone and head.
        max_epochs: the training budget of every run.
        trainer_kwargs: further ``Trainer`` arguments of every run (``precision``, ``accelerator``,
            ``limit_train_batches``, …); logging, checkpointing and progress bars stay off inside runs.
        shift: also evaluate under corruption shift.
        corruptions: shift corruptions (None: all the data module knows).
        severities: shift severities.
        n_bins: calibration bins.
        progress: show a progress bar of runs done and left, the epochs and steps of the run in training, and
            Lightning's progress bar while frozen-mode features are computed.
        log_dir: each run logs its training curves and test scalars with a ``CSVLogger`` to
            ``<log_dir>/<head>/seed_<seed>/metrics.csv`` (None: no logs).
        methods: uncertainty methods by display name (:mod:`ugmm_vision.methods`); each gives a further row
            ``"<head>+<method>"`` per head and seed, built on that run (see :mod:`ugmm_vision.compare.methods`).
        method_heads: the heads the methods are applied to (None: all).
        cache_images: in ``"finetune"`` mode, decode and transform every image once and keep the tensors in
            memory for all runs (training, validation, test, OOD and shift sets) instead of once per run and
            epoch — on small images the per-image transforms cost more than the model. Needs a data module
            without random augmentation (``augment=False``); the training batches are then shuffled by a plain
            seeded ``DataLoader`` rather than the data module's own sampler. Memory: every set as float32 tensors.

    Returns:
        Rows with ``head``, ``seed``, the evaluation ``report`` and the cost figures.
    """
    if not heads:
        raise ValueError("Expected `heads` to name at least one head, got none")
    check_choice("mode", mode, get_args(ComparisonMode))
    if not seeds:
        raise ValueError("Expected at least one seed in `seeds`, got none")
    check_positive_int("max_epochs", max_epochs)
    unknown = sorted(set(method_heads or ()) - set(heads))
    if unknown:
        raise ValueError(f"Expected `method_heads` to name heads of `heads` ({sorted(heads)}), got {unknown}")
    shift_kwargs = {"corruptions": corruptions, "severities": tuple(severities)} if shift else None
    if cache_images and getattr(datamodule, "augment", False):
        raise ValueError(
            "Expected a data module without random augmentation (`augment=False`) with `cache_images=True`, "
            "got augment=True: cached images would repeat one augmentation draw every epoch"
        )
    if mode == "frozen" or cache_images:
        data = _cache_features(
            template, datamodule, shift_kwargs, trainer_kwargs or {}, progress, images_only=mode != "frozen"
        )
    else:
        data = datamodule
    rows = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    lightning_logger = logging.getLogger("lightning.pytorch")
    level = lightning_logger.level
    lightning_logger.setLevel(logging.WARNING)  # one "GPU available…" banner per run would bury the progress bar
    try:
        with Progress(*columns, disable=not progress) as bar:
            task = bar.add_task("comparison runs", total=len(heads) * len(seeds))
            run_task = bar.add_task("", total=None)
            for name, factory in heads.items():
                for seed in seeds:
                    bar.update(task, description=f"{name} · seed {seed}")
                    logger = CSVLogger(log_dir, name=name, version=f"seed_{seed}") if log_dir is not None else False
                    callbacks = [_RunProgress(bar, run_task, f"{name} · seed {seed}")] if progress else None
                    run = RunContext(template, factory, seed, data, mode, max_epochs, trainer_kwargs or {})
                    row = _run_one(run, shift_kwargs, n_bins, logger, callbacks)
                    model = row.pop("model")
                    rows.append({"head": name, "seed": seed, **row})
                    if methods and (method_heads is None or name in method_heads):
                        rows += run_methods(methods, run, model, rows[-1], shift_kwargs, n_bins)
                    bar.advance(task)
    finally:
        lightning_logger.setLevel(level)
    return rows
