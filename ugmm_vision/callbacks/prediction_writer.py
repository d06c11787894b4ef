"""``CSVPredictionWriter``: batch prediction to a CSV, one row per image, with its uncertainty scores.

A Lightning :class:`~lightning.pytorch.callbacks.BasePredictionWriter`: ``ugmm-vision predict`` (or
``Trainer.predict``) runs the model over the data module's ``predict_dataloader()`` with the usual progress
bar, and this callback turns each ``predict_step`` output of :class:`~ugmm_vision.models.ImageClassifier`
(``{"logits", "targets"?, "hidden_density"?}``) into rows:

======================  =================================================================================
``index``               position of the image in the predicted dataset
``path``                its file, when the dataset names its files (``paths``, or torchvision's ``samples``)
``predicted_index``     the arg-max class
``predicted_class``     its name (``class_names``, else the data module's ``class_names``, else the index)
``probability``         its softmax probability (the max-softmax confidence)
``entropy``             entropy of the softmax distribution in nats (higher = more uncertain)
``energy_score``        ``logsumexp(logits)``, the negative free energy (higher = more in-distribution)
``log_density``         uGMM heads only: ``log Σ_c p(x | c)``, the class log-densities summed
``hidden_density``      stacked uGMM heads only: summed log-density of the hidden uGMM neurons
``target``              when the batches carry labels
``finite``              with ``nonfinite="flag"`` only: False where the model's outputs were not finite
======================  =================================================================================

Non-finite outputs (a NaN or +inf logit, a row of only −inf logits, a NaN hidden density — e.g. from a checkpoint
with NaN BatchNorm statistics) have no meaningful probability or entropy (an entropy of 0 would read "certain").
By default (``nonfinite="raise"``) they stop the write with a ``ValueError`` naming the count, the first such
image and the file, and the file is not touched, so an earlier good ``predictions.csv`` survives; with
``nonfinite="flag"`` those rows are written with ``finite`` False and empty prediction and score cells.

Under DDP each rank predicts its share; the rows are gathered
(:func:`~ugmm_vision.report.collect.all_gather_objects`) and global rank zero writes the file, sorted by
``index``. The file is written once, atomically, at the end of the predict epoch.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

from ugmm_vision.checks import check_choice
from ugmm_vision.destinations import check_output_file
from ugmm_vision.functional import density_logsumexp, energy_score, negative_entropy
from ugmm_vision.heads import is_density_head
from ugmm_vision.io import atomic_write_text
from ugmm_vision.report.collect import all_gather_objects, nonfinite_rows

__all__ = ["COLUMNS", "CSVPredictionWriter", "dataset_paths", "prediction_rows"]

COLUMNS = (
    "dataloader_idx",
    "index",
    "path",
    "predicted_index",
    "predicted_class",
    "probability",
    "entropy",
    "energy_score",
    "log_density",
    "hidden_density",
    "target",
    "finite",
)
"""Every column the writer knows, in file order; columns no row has are left out."""


def prediction_rows(
    outputs: dict[str, Tensor],
    indices: Sequence[int],
    *,
    class_names: Sequence[str] | None = None,
    paths: Sequence[str] | None = None,
    density: bool = False,
) -> list[dict[str, Any]]:
    """CSV rows of one batch of ``predict_step`` outputs.

    Args:
        outputs: ``{"logits": (B, C)[, "targets": (B,)][, "hidden_density": (B,)]}``.
        indices: the dataset index of each of the B items.
        class_names: names by class index (None: the index as text).
        paths: file path by dataset index (None: no ``path`` column).
        density: add ``log_density`` (the logits are class log-densities: a uGMM head).

    Returns:
        One dict per item, keyed by :data:`COLUMNS`; ``finite`` is False where the logits hold NaN or +inf, a row
        holds only −inf, or the hidden density is not finite: those rows have None for the prediction and scores.

    Example:
        >>> rows = prediction_rows({"logits": torch.tensor([[0.0, 0.0], [3.0, 0.0]])}, [7, 8], class_names=["a", "b"])
        >>> [(r["index"], r["predicted_class"], round(r["probability"], 4), round(r["entropy"], 4)) for r in rows]
        [(7, 'a', 0.5, 0.6931), (8, 'a', 0.9526, 0.1909)]
    """
    logits = outputs["logits"].detach().cpu().double()  # (B, C)
    if logits.dim() != 2 or len(indices) != logits.shape[0]:
        raise ValueError(
            f"Expected `indices` with one entry per row of logits {tuple(logits.shape)}, got {len(indices)}"
        )
    if class_names is not None and len(class_names) != logits.shape[1]:
        raise ValueError(
            f"Expected `class_names` with one name per class of the model ({logits.shape[1]}), got "
            f"{len(class_names)}: {list(class_names)[:5]}{' …' if len(class_names) > 5 else ''}"
        )
    finite = ~nonfinite_rows(logits)  # (B,)
    hidden = outputs.get("hidden_density")
    if hidden is not None:
        finite &= hidden.detach().cpu().reshape(-1).isfinite()
    logits = torch.where(finite[:, None], logits, torch.zeros_like(logits))  # (B, C): bad rows blanked below
    probability, predicted = logits.softmax(dim=-1).max(dim=-1)  # (B,) each
    columns: dict[str, Tensor] = {
        "probability": probability,
        "entropy": -negative_entropy(logits),
        "energy_score": energy_score(logits),
    }
    if density:
        columns["log_density"] = density_logsumexp(logits)
    if hidden is not None:
        columns["hidden_density"] = hidden.detach().cpu()
    target = outputs.get("targets")
    rows = []
    for i, index in enumerate(int(j) for j in indices):
        row: dict[str, Any] = {"index": index, "finite": bool(finite[i])}
        if paths is not None:
            row["path"] = str(paths[index])
        if row["finite"]:
            label = int(predicted[i])
            row["predicted_index"] = label
            row["predicted_class"] = class_names[label] if class_names is not None else str(label)
            row.update({name: values[i].item() for name, values in columns.items()})
        else:
            row.update(dict.fromkeys(("predicted_index", "predicted_class", *columns)))
        if target is not None:
            row["target"] = target[i].item()
        rows.append(row)
    return rows


class CSVPredictionWriter(BasePredictionWriter):
    """Write batch predictions with their uncertainty scores to one CSV file (see the module docstring).

    Args:
        output_path: the CSV file; parent folders are created; an existing file is replaced atomically.
        class_names: class names by index (None: the data module's ``class_names`` if it has them).
        write_interval: when rows are taken from the predictions: ``"epoch"`` — from all predictions at the end
            (Lightning keeps them); ``"batch"`` — after each batch, so ``--return_predictions=false`` can free
            them for large folders. The file is written once at the end of the epoch in both cases.
        nonfinite: images whose outputs are not finite: ``"raise"`` — a ``ValueError`` and no file written;
            ``"flag"`` — written with ``finite`` False and empty prediction and score cells.

    Example:
        >>> writer = CSVPredictionWriter("outputs/predictions.csv", class_names=["cat", "dog"])
        >>> writer.output_path.name, writer.interval.value
        ('predictions.csv', 'epoch')
    """

    def __init__(
        self,
        output_path: str | os.PathLike,
        class_names: list[str] | None = None,
        write_interval: Literal["batch", "epoch", "batch_and_epoch"] = "epoch",
        nonfinite: Literal["raise", "flag"] = "raise",
    ) -> None:
        if not isinstance(output_path, (str, os.PathLike)) or not str(output_path):
            raise ValueError(f"Expected `output_path` to be a file path, got {output_path!r}")
        check_choice("write_interval", write_interval, ("batch", "epoch", "batch_and_epoch"))
        if class_names is not None and (
            isinstance(class_names, str) or not all(isinstance(n, str) for n in class_names)
        ):
            raise ValueError(f"Expected `class_names` to be a list of str or None, got {class_names!r}")
        check_choice("nonfinite", nonfinite, ("raise", "flag"))
        super().__init__(write_interval)
        self.nonfinite = nonfinite
        self.output_path = Path(output_path)
        self.class_names = None if class_names is None else list(class_names)
        self._rows: list[dict[str, Any]] = []

    # -- collecting ---------------------------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "predict" and trainer.is_global_zero:  # a folder or read-only path fails now, not at the end
            check_output_file(self.output_path, argument="output_path")

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._rows = []

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        self._add(trainer, pl_module, prediction, batch_indices, dataloader_idx)

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: Sequence[Any], batch_indices: Sequence[Any]
    ) -> None:
        if self.interval.on_batch:
            return  # the rows were taken batch by batch
        per_loader = [predictions] if len(batch_indices) == 1 else predictions  # Lightning unwraps one loader
        for loader_idx, (outputs, indices) in enumerate(zip(per_loader, batch_indices, strict=True)):
            for prediction, batch in zip(outputs, indices, strict=True):
                self._add(trainer, pl_module, prediction, batch, loader_idx)

    def _add(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        indices: Sequence[int] | None,
        dataloader_idx: int,
    ) -> None:
        if not isinstance(prediction, dict) or "logits" not in prediction:
            raise ValueError(f"Expected predict_step outputs as a dict with 'logits', got {type(prediction).__name__}")
        if indices is None:
            raise ValueError("Expected Lightning to track the batch indices (predict through a torch DataLoader)")
        rows = prediction_rows(
            prediction,
            indices,
            class_names=self.class_names or _datamodule_class_names(trainer),
            paths=_dataset_paths(trainer, dataloader_idx),
            density=is_density_head(getattr(pl_module, "head", None)),  # logits are class log-densities
        )
        for row in rows:
            row["dataloader_idx"] = dataloader_idx
        self._rows.extend(rows)

    # -- writing --------------------------------------------------------------------------------------------------
    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_predict_epoch_end(trainer, pl_module)  # calls write_on_epoch_end for the "epoch" interval
        rows = [row for part in all_gather_objects(trainer, self._rows) for row in part]  # every rank's rows
        self._rows = []
        bad = [row for row in rows if not row["finite"]]
        if bad and self.nonfinite == "raise":  # every rank holds all rows here: all raise alike
            first = min(bad, key=lambda row: (row["dataloader_idx"], row["index"]))
            where = f"index {first['index']}" + (f", {first['path']}" if first.get("path") else "")
            raise ValueError(
                f"Expected finite model outputs for every image, got {len(bad)} of {len(rows)} image(s) with NaN or "
                f"infinite logits (first: {where}); {str(self.output_path)!r} was not written (an existing file is "
                "left unchanged). Check the checkpoint (e.g. NaN BatchNorm statistics), or pass `nonfinite`='flag' "
                "to write such rows flagged"
            )
        if trainer.is_global_zero:
            self.write_csv(rows)

    def write_csv(self, rows: list[dict[str, Any]]) -> Path:
        """Write ``rows`` sorted by (loader, index), one row per item, atomically; returns the path."""
        unique = {(row["dataloader_idx"], row["index"]): row for row in rows}  # each item once, whatever the sampler
        ordered = [unique[key] for key in sorted(unique)]
        multi_loader = len({key[0] for key in unique}) > 1
        present = {key for row in ordered for key in row}  # a flagged row has the keys, with empty cells
        columns = [
            c
            for c in COLUMNS
            if c in present and (c != "dataloader_idx" or multi_loader) and (c != "finite" or self.nonfinite == "flag")
        ]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(ordered)
        return atomic_write_text(self.output_path, buffer.getvalue())


def _datamodule_class_names(trainer: L.Trainer) -> list[str] | None:
    try:
        names = getattr(trainer.datamodule, "class_names", None)
    except (NotImplementedError, RuntimeError, AttributeError):
        return None
    return list(names) if names else None


def _dataset_paths(trainer: L.Trainer, dataloader_idx: int) -> list[str] | None:
    loaders = trainer.predict_dataloaders
    loader = loaders[dataloader_idx] if isinstance(loaders, (list, tuple)) else loaders
    return dataset_paths(getattr(loader, "dataset", None))


def dataset_paths(dataset: Any, _depth: int = 0) -> list[str] | None:
    """The file of each item of ``dataset``, or None if it does not name its files.

    Read from ``paths``, or torchvision's ``samples``; wrappers holding a ``dataset`` (and ``indices`` for a
    subset), such as ``torch.utils.data.Subset`` or the data modules' transformed datasets, are looked through.

    Example:
        >>> from torch.utils.data import Subset
        >>> class Files(list):
        ...     paths = ["a.png", "b.png", "c.png"]
        >>> dataset_paths(Subset(Files([0, 1, 2]), [2, 0]))
        ['c.png', 'a.png']
    """
    if dataset is None or _depth > 8:  # wrappers seldom nest deeper; a cycle must not recurse forever
        return None
    paths = getattr(dataset, "paths", None)
    if paths is None and getattr(dataset, "samples", None) is not None:  # torchvision ImageFolder-style datasets
        paths = [sample[0] for sample in dataset.samples]
    if paths is not None:
        return [str(p) for p in paths]
    inner = getattr(dataset, "dataset", None)
    inner_paths = dataset_paths(inner, _depth + 1) if inner is not dataset else None
    indices = getattr(dataset, "indices", None)
    if inner_paths is None or indices is None:
        return inner_paths
    return [inner_paths[int(i)] for i in indices]
