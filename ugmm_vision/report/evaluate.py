"""``evaluate_model``: run a trained classifier over every named evaluation set and write the report folder.

Writes ``report.json``, ``report.md`` and PNG plots (reliability diagram, risk–coverage, ID-vs-OOD score
histograms, accuracy/ECE under shift) — files, so any logger works — and also logs the figures to loggers that
take images (TensorBoard's ``add_figure``, or a ``log_image(key, images)`` method).

Under DDP (``--trainer.strategy=ddp``) every rank predicts its share of each set (Lightning's unrepeated
distributed sampler: rank ``r`` holds items ``r, r + W, r + 2W, …``, no padding), the shares are gathered and
put back in the loader's order, so the report equals the one-process report; only global rank zero writes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from lightning import LightningDataModule, LightningModule, Trainer
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch.utils.data import DataLoader

from ugmm_vision.functional import max_softmax_probability
from ugmm_vision.functional._validation import check_n_bins
from ugmm_vision.heads import is_density_head
from ugmm_vision.methods.base import UncertaintyMethod, ready_method
from ugmm_vision.report.destinations import check_output_dir, replace_files
from ugmm_vision.report.evaluation import EvalOutputs, build_report, concat_outputs
from ugmm_vision.report.io import to_jsonable
from ugmm_vision.report.markdown import report_markdown
from ugmm_vision.report.plots import (
    plot_reliability_diagram,
    plot_risk_coverage,
    plot_score_histograms,
    plot_shift_curves,
)

__all__ = ["REPORT_FILES", "collect_outputs", "evaluate_model", "report_figures", "write_report_folder"]


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
        _log_figures(trainer, figures)
    if trainer.world_size > 1:
        report["paths"] = trainer.strategy.broadcast(report.get("paths"), src=0)
        trainer.strategy.barrier("evaluate_model")  # no rank returns before the files exist
    return report


REPORT_FILES = ("report.json", "report.md", "reliability.png", "risk_coverage.png", "shift.png")
"""Files a report folder may hold besides ``scores_<ood set>.png``; a new report removes those it does not write."""


def write_report_folder(out_dir: Path, report: dict, figures: dict[str, Figure]) -> dict[str, str]:
    """Write ``report.json``, ``report.md`` and one PNG per figure into ``out_dir`` as one consistent report.

    Everything is rendered in memory and staged in temporary files first
    (:func:`~ugmm_vision.report.destinations.replace_files`): a failure part-way (a full disk) leaves the previous
    report as it was; plots of an older report that this one does not have (``shift.png`` after a run without
    shift, the histogram of an OOD set no longer evaluated) are removed. Sets ``report["paths"]`` and returns it.
    """
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md"}
    files: dict[str, bytes] = {}
    for name, figure in figures.items():
        paths[name] = out_dir / f"{name}.png"
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=150)
        files[paths[name].name] = buffer.getvalue()
    report["paths"] = {name: str(path) for name, path in paths.items()}
    text = json.dumps(to_jsonable(report), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    files["report.md"] = report_markdown(report).encode("utf-8")
    files["report.json"] = text.encode("utf-8")
    owned = [*REPORT_FILES, *(p.name for p in out_dir.glob("scores_*.png")), *_listed_files(out_dir)]
    replace_files(out_dir, files, owned=owned, index=("report.json", "report.md"))
    return report["paths"]


def _listed_files(out_dir: Path) -> list[str]:
    """Names of the files the folder's current report.json lists in the folder (none if it is unreadable)."""
    try:
        listed = json.loads((out_dir / "report.json").read_text(encoding="utf-8")).get("paths", {})
    except (OSError, ValueError, AttributeError):
        return []
    if not isinstance(listed, dict):
        return []
    names = [Path(str(p)) for p in listed.values()]
    return [p.name for p in names if p.parent.resolve() == out_dir.resolve() and p.suffix in (".png", ".json", ".md")]


def check_finite_outputs(outputs: dict[str, EvalOutputs], ckpt_path: str | None = None) -> None:
    """Raise ``ValueError`` naming the set and the checkpoint when a model's logits are not finite.

    A row with a NaN or +inf logit, or only −inf ones, has no probabilities: its metrics would be NaN (``null`` in
    report.json) and its prediction arbitrary, so a report of it would look valid and be wrong.

    Example:
        >>> check_finite_outputs({"id": EvalOutputs(torch.tensor([[0.0, float("nan")]]), torch.tensor([0]))})
        Traceback (most recent call last):
        ...
        ValueError: Expected finite logits on every evaluation set, got 1 of 1 rows ...
    """
    for name, out in outputs.items():
        logits = out.logits
        bad = logits.isnan().any(dim=-1) | logits.isposinf().any(dim=-1) | logits.isneginf().all(dim=-1)  # (N,)
        if bool(bad.any()):
            raise ValueError(
                f"Expected finite logits on every evaluation set, got {int(bad.sum())} of {len(bad)} rows with NaN or "
                f"infinite logits in {name!r} (ckpt_path={ckpt_path!r}); no report was written (an existing one is "
                "left unchanged). Check the checkpoint, e.g. for NaN weights or BatchNorm statistics"
            )


def collect_outputs(
    trainer: Trainer, model: LightningModule, loaders: dict[str, DataLoader], ckpt_path: str | None = None
) -> dict[str, EvalOutputs]:
    """Run Lightning's predict loop over named loaders and join each set's batches into :class:`EvalOutputs`.

    Under DDP the ranks' shares are gathered, so every rank returns each whole set in the loader's order.
    """
    predictions = trainer.predict(model, dataloaders=list(loaders.values()), ckpt_path=ckpt_path)
    if predictions is None:
        raise ValueError(
            f"Expected the predict loop to return predictions, got None from {type(trainer.strategy).__name__}: "
            "strategies that spawn processes (ddp_spawn) do not return them; use --trainer.strategy=ddp"
        )
    if len(loaders) == 1:
        predictions = [predictions]
    empty = [name for name, batches in zip(loaders, predictions, strict=True) if not batches]
    if empty and trainer.world_size == 1:  # under DDP a rank may hold no item of a tiny set; the gather checks
        raise ValueError(
            f"Expected every evaluation set to hold at least one image, got none in {empty} (were all its files "
            "skipped as unreadable, or its folder empty?)"
        )
    outputs = {name: concat_outputs(batches) for name, batches in zip(loaders, predictions, strict=True)}
    if trainer.world_size > 1:
        outputs = {name: _gather_outputs(trainer, out, name) for name, out in outputs.items()}
    return outputs


def _gather_outputs(trainer: Trainer, out: EvalOutputs, name: str) -> EvalOutputs:
    """Join the ranks' shares of one set: rank ``r`` predicted items ``r, r + W, …`` (the unrepeated sampler)."""
    world = trainer.world_size
    device = trainer.strategy.root_device
    counts = trainer.strategy.all_gather(torch.tensor([len(out.targets)], device=device)).reshape(world).tolist()
    total = sum(counts)
    expected = [len(range(rank, total, world)) for rank in range(world)]
    if counts != expected:
        raise ValueError(
            f"Expected the {name!r} set split over {world} ranks as {expected} items (each item once), got {counts}: "
            "keep Trainer(use_distributed_sampler=True) for evaluate"
        )

    def gather(tensor: torch.Tensor) -> torch.Tensor:
        padded = tensor.new_zeros((max(counts), *tensor.shape[1:]))  # (N_max, …): all_gather wants equal shapes
        padded[: len(tensor)] = tensor
        parts = trainer.strategy.all_gather(padded.to(device)).cpu()  # (W, N_max, …)
        full = tensor.new_empty((total, *tensor.shape[1:]))
        for rank in range(world):
            full[rank::world] = parts[rank, : counts[rank]]
        return full

    hidden = out.hidden_density
    extra = {k: gather(v) for k, v in out.extra.items()}  # a method's scores: same names, same order on every rank
    return EvalOutputs(gather(out.logits), gather(out.targets), None if hidden is None else gather(hidden), extra)


def report_figures(outputs: dict[str, EvalOutputs], report: dict, n_bins: int = 15) -> dict[str, Figure]:
    """The report's figures by file stem: reliability, risk_coverage, scores_<ood set>, shift."""
    id_out = outputs["id"]
    probs = id_out.logits.double().softmax(dim=-1)
    correct = probs.argmax(dim=-1) == id_out.targets
    figures = {
        "reliability": plot_reliability_diagram(probs, id_out.targets, n_bins=n_bins),
        "risk_coverage": plot_risk_coverage({"msp": (max_softmax_probability(id_out.logits), correct)}),
    }
    for ood_name, best in report["ood_best"].items():
        score = best["score"]
        id_scores = id_out.scores((score,))[score]
        ood_scores = {ood_name: outputs[ood_name].scores((score,))[score]}
        figures[f"scores_{ood_name.replace('/', '_')}"] = plot_score_histograms(id_scores, ood_scores, score)
    if report["shift"]:
        clean = {k: report["id"][k] for k in ("acc", "ece", "nll")}
        curves = {c: {0: clean, **by_severity} for c, by_severity in report["shift"]["per_corruption"].items()}
        figures["shift"] = plot_shift_curves(curves)
    return figures


def _log_figures(trainer: Trainer, figures: dict[str, Figure]) -> None:
    for logger in trainer.loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_figure"):  # TensorBoard
            for name, figure in figures.items():
                experiment.add_figure(f"report/{name}", figure, global_step=trainer.global_step)
        elif hasattr(logger, "log_image"):  # W&B, Neptune-style loggers
            for name, figure in figures.items():
                logger.log_image(key=f"report/{name}", images=[_figure_to_array(figure)])


def _figure_to_array(figure: Figure) -> np.ndarray:
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3) RGB
