"""``UGMMTrainer``: Lightning's ``Trainer`` plus the ``evaluate``, ``compare``, ``export`` and ``pretrain`` subcommands.

LightningCLI reads each subcommand's arguments from the signature of the trainer method of that name, so every
method spells its arguments out (typed, with defaults shown in ``--help``) and hands them on unchanged, by name
(:func:`_arguments`), to the function that does the work: :func:`~ugmm_vision.report.evaluate_model`,
:func:`~ugmm_vision.compare.compare_heads`, :func:`~ugmm_vision.export.export_trained`.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning import LightningDataModule, LightningModule, Trainer
from rich.console import Console
from rich.table import Table

from ugmm_vision.compare.training import ComparisonMode
from ugmm_vision.export import ExportFormat
from ugmm_vision.methods import UncertaintyMethod
from ugmm_vision.models import HeadFactory

__all__ = ["UGMMTrainer"]


def _arguments(local_names: dict[str, Any]) -> dict[str, Any]:
    """A method's arguments by name: its ``locals()`` taken first thing in the body, ``self`` left out."""
    return {name: value for name, value in local_names.items() if name != "self"}


class UGMMTrainer(Trainer):
    """Lightning's ``Trainer`` plus :meth:`evaluate` (the report), :meth:`compare` (the head comparison),
    :meth:`export` and :meth:`pretrain`."""

    def evaluate(
        self,
        model: LightningModule,
        datamodule: LightningDataModule,
        ckpt_path: str | None = None,
        output_dir: str = "outputs/report",
        corruptions: list[str] | None = None,
        severities: list[int] = [1, 2, 3, 4, 5],  # noqa: B006 - jsonargparse shows this default in --help
        shift: bool = True,
        temperature_scaling: bool = True,
        n_bins: int = 15,
        method: UncertaintyMethod | None = None,
    ) -> dict:
        """Evaluate accuracy, calibration, OOD detection and shift, and write report.json, report.md and plots.

        Every number of the report is also logged to the trainer's loggers as ``evaluate/<set>/<metric>``.

        Args:
            model: the classifier.
            datamodule: its data module; its named test sets are evaluated.
            ckpt_path: checkpoint to evaluate (None: the model as configured, untrained).
            output_dir: folder for report.json, report.md and the PNG plots.
            corruptions: corruption names for the shift sets (None: all).
            severities: corruption severities to evaluate (1–5).
            shift: evaluate under corruption shift.
            temperature_scaling: fit a temperature on the validation set and report the metrics after it.
            n_bins: calibration bins.
            method: an uncertainty method wrapping the checkpoint (``ugmm_vision.methods.MCDropout``,
                ``DeepEnsemble`` with ``checkpoints``, ``FeatureDensity``, ``LastLayerLaplace``; see docs/methods.md).
        """
        arguments = _arguments(locals())
        from ugmm_vision.report import evaluate_model, report_summary_rows
        from ugmm_vision.report.scalars import report_scalars

        report = evaluate_model(self, **{**arguments, "severities": tuple(severities)})
        scalars = report_scalars(report, "evaluate/")  # the report's numbers also go to the trainer's loggers
        for logger in self.loggers:
            logger.log_metrics(scalars, step=self.global_step)
            logger.save()
        if self.is_global_zero:
            table = Table(title="ugmm-vision evaluation (test set)")
            rows = report_summary_rows(report)
            for column in rows[0]:
                table.add_column(column, justify="left" if column == "metric" else "right")
            for row in rows:
                table.add_row(*row.values())
            console = Console()
            console.print(table)
            console.print(f"Report folder: {report['paths']['markdown'].rsplit('/', 1)[0]}")
        return report

    def compare(
        self,
        model: LightningModule,
        datamodule: LightningDataModule,
        heads: dict[str, HeadFactory],
        seeds: list[int] = [0, 1, 2],  # noqa: B006 - shown in --help
        mode: ComparisonMode = "finetune",
        epochs: int | None = None,
        output_dir: str = "outputs/compare",
        shift: bool = True,
        corruptions: list[str] | None = None,
        severities: list[int] = [1, 3, 5],  # noqa: B006 - shown in --help
        n_bins: int = 15,
        methods: dict[str, UncertaintyMethod] | None = None,
        method_heads: list[str] | None = None,
        cache_images: bool = False,
    ) -> dict:
        """Train every head on the same backbone, data and budget for several seeds; write compare.json/.md and plots.

        Args:
            model: the classifier whose backbone, optimiser, schedule and learning rates every run uses.
            datamodule: the data.
            heads: head classes by display name (``class_path`` + ``init_args``; sizes are filled in).
            seeds: one run per head and seed.
            mode: ``frozen`` trains heads on cached backbone features; ``finetune`` trains backbone and head.
            epochs: epochs per run (None: ``trainer.max_epochs``).
            output_dir: folder for compare.json, compare.md, the plots and the per-run CSV logs
                (``runs/<head>/seed_<seed>/metrics.csv``).
            shift: also evaluate under corruption shift.
            corruptions: shift corruptions (None: all).
            severities: shift severities.
            n_bins: calibration bins.
            methods: uncertainty methods by display name (``class_path`` + ``init_args``, e.g.
                ``ugmm_vision.methods.DeepEnsemble``); one more row ``<head>+<method>`` per head and seed.
            method_heads: the heads the methods are applied to (None: all).
            cache_images: ``finetune`` mode: transform every image once and keep the tensors in memory for all runs
                (needs ``augment: false``; see :func:`ugmm_vision.compare.run_comparison`).
        """
        arguments = _arguments(locals())
        from ugmm_vision.compare import compare_heads

        epochs = epochs if epochs is not None else (self.max_epochs if self.max_epochs and self.max_epochs > 0 else 10)
        settings = {
            "backbone": type(model.backbone).__name__,
            "data": type(datamodule).__name__,
            "mode": mode,
            "epochs": epochs,
            "seeds": list(seeds),
            "heads": list(heads),
            **({"methods": list(methods), "method_heads": method_heads} if methods else {}),
            **({"cache_images": True} if cache_images else {}),
        }
        trainer_kwargs = {
            "accelerator": self.accelerator,  # the one --trainer.accelerator chose, for training and features
            "precision": self.precision,
            "limit_train_batches": self.limit_train_batches,
            "limit_val_batches": self.limit_val_batches,
            "deterministic": torch.are_deterministic_algorithms_enabled(),
        }
        options = {k: v for k, v in arguments.items() if k not in ("model", "datamodule", "heads", "epochs")}
        result = compare_heads(
            model,
            datamodule,
            heads,
            **{**options, "seeds": tuple(seeds), "severities": tuple(severities)},
            max_epochs=epochs,
            trainer_kwargs=trainer_kwargs,
            settings=settings,
        )
        Console().print(f"Comparison written to {result['paths']['markdown']}")
        return result

    def export(
        self,
        model: LightningModule,
        datamodule: LightningDataModule,
        ckpt_path: str | None = None,
        format: ExportFormat = "onnx",
        output: str | None = None,
        temperature: float | None = None,
        calibrate: bool = False,
        input_shape: list[int] | None = None,
        opset: int = 18,
    ) -> dict:
        """Export backbone + head (logits, optionally divided by a temperature) and check the file's logits.

        Args:
            model: the classifier.
            datamodule: its data module (input shape from the first predict batch; validation set for calibrate).
            ckpt_path: checkpoint to export (None: the model as configured, untrained).
            format: onnx (torch's dynamo exporter), torch_export (an ExportedProgram, .pt2), or torchscript
                (deprecated: torch deprecates TorchScript; warns).
            output: the file (None: <trainer.default_root_dir>/export/model.<pt|onnx|pt2>).
            temperature: divide the logits by this temperature.
            calibrate: fit the temperature on the validation set instead (temperature scaling).
            input_shape: [C, H, W] of one image (None: from the data).
            opset: ONNX opset version (18 or later: the lowest torch's ONNX exporter implements).
        """
        arguments = _arguments(locals())
        from ugmm_vision.export import export_trained

        info = export_trained(self, **arguments)
        diff = "not checked" if info["max_abs_diff"] is None else f"max |Δ logits| = {info['max_abs_diff']:.2e}"
        Console().print(f"Exported {info['format']} (T = {info['temperature']:.4g}, {diff}) to {info['path']}")
        return info

    def pretrain(
        self,
        model: LightningModule,
        datamodule: LightningDataModule,
        output: str = "outputs/pretrain/backbone.safetensors",
        ckpt_path: str | None = None,
    ) -> dict:
        """Fit as ``fit`` does, then write the timm backbone's weights for ``create_backbone(..., pretrained_file=)``.

        Args:
            model: a classifier whose backbone is a ``TimmBackbone`` (in_chans 1 or 3).
            datamodule: the source data, e.g. Fashion-MNIST classes 0–4 (``ood_classes: [5, 6, 7, 8, 9]``).
            output: the safetensors file to write (see ``ugmm_vision/backbones/pretrained.py``).
            ckpt_path: resume the fit from this checkpoint.
        """
        from ugmm_vision.backbones.pretrained import save_backbone_weights
        from ugmm_vision.backbones.timm_backbone import TimmBackbone

        backbone = getattr(model, "backbone", None)
        if not isinstance(backbone, TimmBackbone):  # checked before the fit, not after it
            raise TypeError(f"Expected `model.backbone` to be a TimmBackbone, got {type(backbone).__name__}")
        if not output.endswith(".safetensors"):
            raise ValueError(f"Expected `output` to end in .safetensors, got {output!r}")
        self.fit(model, datamodule, ckpt_path=ckpt_path)
        metrics = {k: float(v) for k, v in self.callback_metrics.items() if k.startswith("val/")}
        if self.is_global_zero:
            save_backbone_weights(backbone, output, metadata={"epochs": str(self.current_epoch)})
            summary = ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()))
            Console().print(f"Backbone weights ({backbone.model_name}) written to {output} ({summary})")
        return {"path": output, "architecture": backbone.model_name, "metrics": metrics}
