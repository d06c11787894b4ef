"""``evaluate_model``: run a trained classifier over every named evaluation set and write the report folder.

The evaluation in three steps, each a module of its own: :mod:`ugmm_vision.report.collect` runs the predict loop
over the named sets (gathered across DDP ranks), :mod:`ugmm_vision.report.build` turns the outputs into the report
dict, and :mod:`ugmm_vision.report.folder` writes ``report.json``, ``report.md`` and the PNG plots
(:func:`~ugmm_vision.report.plots.report_figures`: reliability diagram, risk–coverage, ID-vs-OOD score histograms,
accuracy/ECE under shift) — files, so any logger works — while the figures also go to loggers that take images
(:func:`~ugmm_vision.report.canvas.log_figures`).

Under DDP (``--trainer.strategy=ddp``) every rank predicts its share of each set and the shares are put back in the
loader's order, so the report equals the one-process report; only global rank zero writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lightning import LightningDataModule, LightningModule, Trainer

from ugmm_vision.checks import check_n_bins
from ugmm_vision.destinations import check_output_dir
from ugmm_vision.heads import is_density_head
from ugmm_vision.methods.base import UncertaintyMethod, ready_method
from ugmm_vision.report.build import build_report
from ugmm_vision.report.canvas import log_figures
from ugmm_vision.report.collect import check_finite_outputs, collect_outputs
from ugmm_vision.report.folder import REPORT_FILES, write_report_folder
from ugmm_vision.report.plots import report_figures

# collect_outputs, check_finite_outputs, report_figures, write_report_folder and REPORT_FILES lived here: they are
# re-exported for one release.
__all__ = [
    "REPORT_FILES",
    "check_finite_outputs",
    "collect_outputs",
    "evaluate_model",
    "report_figures",
    "write_report_folder",
]


def evaluate_model(
    trainer: Trainer,
    model: LightningModule,
    datamodule: LightningDataModule,
    ckpt_path: str | None = None,
    output_dir: str | Path = "outputs/report",
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    shift: bool = True,
    temperature_scaling: bool = True,
    n_bins: int = 15,
    method: UncertaintyMethod | None = None,
) -> dict:
    """Evaluate ``model`` on the data module's named test sets and write the report folder.

    Args:
        trainer: the Lightning trainer that runs the predict loop (progress bar, devices, precision).
        model: an :class:`~ugmm_vision.models.ImageClassifier` (any module whose ``predict_step`` returns
            ``{"logits", "targets"[, "hidden_density"]}``).
        datamodule: gives ``test_dataloader()`` as a dict of named sets (``"id"``, ``"ood…"``), a validation
            loader for temperature scaling and, when it has ``shift_dataloaders``, corrupted copies of the test set.
        ckpt_path: checkpoint to load first (``None``: the model's current weights).
        output_dir: folder of ``report.json``, ``report.md`` and the plots; created if missing.
        corruptions: corruption names for the shift sets (``None``: all the data module knows).
        severities: corruption severities, 1–5.
        shift: evaluate under corruption shift (when the data module supports it).
        temperature_scaling: fit a temperature on the validation set and report the metrics after it too.
        n_bins: bins of the calibration errors and the reliability diagram.
        method: an uncertainty method (:mod:`ugmm_vision.methods`) wrapping the trained model: it is attached to
            the model loaded from ``ckpt_path`` (an ensemble loads its own ``checkpoints``), fitted on the training
            loader when it needs fitting, and run over the same named sets; the report gains its scores and cost
            (``report["method"]``).

    Returns:
        The report dict (also in ``report.json``), with ``report["paths"]`` naming the written files. Under DDP
        every rank returns the same report; the files are written by global rank zero.
    """
    check_n_bins(n_bins)  # before the predictions, not after them
    if trainer.is_global_zero:  # a file or read-only folder fails now, not after the whole evaluation
        check_output_dir(output_dir, argument="output_dir")
    if trainer.local_rank == 0:  # downloads happen once per node (Lightning's prepare_data convention)
        datamodule.prepare_data()
    datamodule.setup("test")
    loaders = dict(datamodule.test_dataloader())
    if "id" not in loaders:
        raise ValueError(f"Expected the data module's test_dataloader() to name an 'id' set, got {sorted(loaders)}")
    if shift and hasattr(datamodule, "shift_dataloaders"):
        loaders.update(datamodule.shift_dataloaders(corruptions=corruptions, severities=tuple(severities)))
    if temperature_scaling:
        loaders["val"] = datamodule.val_dataloader()
    is_ugmm = is_density_head(getattr(model, "head", None))
    if method is not None:
        predictor = ready_method(method, model, datamodule, ckpt_path, device=trainer.strategy.root_device)
        outputs = collect_outputs(trainer, predictor, loaders)
        is_ugmm = is_ugmm and method.keeps_head_logits  # other methods' logits are not the head's log-densities
    else:
        outputs = collect_outputs(trainer, model, loaders, ckpt_path=ckpt_path)
    check_finite_outputs(outputs, ckpt_path)  # NaN logits would otherwise become `null` metrics in the report
    val_outputs = outputs.pop("val", None)
    report = build_report(outputs, val_outputs, density_scores=is_ugmm, n_bins=n_bins)
    if method is not None:
        report["method"] = method.cost()
    report["meta"] = {
        "model": type(model).__name__,
        "head": type(getattr(model, "head", model)).__name__,
        "datamodule": type(datamodule).__name__,
        "ckpt_path": None if ckpt_path is None else str(ckpt_path),
        "sizes": {name: len(out.targets) for name, out in outputs.items()},
    }
    out_dir = Path(output_dir)
    if trainer.is_global_zero:
        figures = report_figures(outputs, report, n_bins)
        write_report_folder(out_dir, report, figures)
        log_figures(trainer, figures)
    if trainer.world_size > 1:
        report["paths"] = trainer.strategy.broadcast(report.get("paths"), src=0)
        trainer.strategy.barrier("evaluate_model")  # no rank returns before the files exist
    return report
