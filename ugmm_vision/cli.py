"""The ``ugmm-vision`` command: stock ``LightningCLI`` over :class:`ImageClassifier` and any data module.

Usage::

    ugmm-vision fit --config configs/digits.yaml
    ugmm-vision test --config configs/digits.yaml --ckpt_path outputs/digits/checkpoints/best.ckpt
    ugmm-vision evaluate --config configs/digits.yaml --ckpt_path outputs/digits/checkpoints/best.ckpt
    ugmm-vision compare --config configs/compare_digits.yaml
    ugmm-vision export --config configs/digits.yaml --ckpt_path outputs/digits/checkpoints/best.ckpt --format onnx
    ugmm-vision pretrain --config configs/pretrain_fashion_mnist.yaml

``evaluate``, ``compare``, ``export`` and ``pretrain`` are further subcommands, added through LightningCLI's public
extension points: a ``Trainer`` subclass with the methods (``trainer_class``) and :meth:`LightningCLI.subcommands`
listing them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import yaml
from lightning import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, LRSchedulerCallable, OptimizerCallable
from rich.console import Console
from rich.table import Table

import ugmm_vision
from ugmm_vision.compare.runner import ComparisonMode
from ugmm_vision.export import ExportFormat
from ugmm_vision.methods import UncertaintyMethod
from ugmm_vision.models import HeadFactory, ImageClassifier
from ugmm_vision.models.checkpoint_config import checkpoint_config_args, give_model_specs
from ugmm_vision.models.checkpoint_loading import last_checkpoint
from ugmm_vision.models.checkpoints import check_checkpoint_file

__all__ = ["UGMMCLI", "UGMMTrainer", "build_cli", "main"]


class UGMMTrainer(Trainer):
    """Lightning's ``Trainer`` plus :meth:`evaluate` (the report) and :meth:`compare` (the head comparison)."""

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
        from ugmm_vision.report import evaluate_model, report_summary_rows
        from ugmm_vision.report.scalars import report_scalars

        report = evaluate_model(
            self,
            model,
            datamodule,
            ckpt_path=ckpt_path,
            output_dir=output_dir,
            corruptions=corruptions,
            severities=tuple(severities),
            shift=shift,
            temperature_scaling=temperature_scaling,
            n_bins=n_bins,
            method=method,
        )
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
        """
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
        }
        trainer_kwargs = {
            "accelerator": self.accelerator,  # the one --trainer.accelerator chose, for training and features
            "precision": self.precision,
            "limit_train_batches": self.limit_train_batches,
            "limit_val_batches": self.limit_val_batches,
            "deterministic": torch.are_deterministic_algorithms_enabled(),
        }
        result = compare_heads(
            model,
            datamodule,
            heads,
            seeds=tuple(seeds),
            mode=mode,
            max_epochs=epochs,
            shift=shift,
            trainer_kwargs=trainer_kwargs,
            corruptions=corruptions,
            severities=tuple(severities),
            n_bins=n_bins,
            output_dir=output_dir,
            settings=settings,
            methods=methods,
            method_heads=method_heads,
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
        from ugmm_vision.export import export_trained

        info = export_trained(
            self,
            model,
            datamodule,
            ckpt_path=ckpt_path,
            format=format,
            output=output,
            temperature=temperature,
            calibrate=calibrate,
            input_shape=input_shape,
            opset=opset,
        )
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


class UGMMCLI(LightningCLI):
    """LightningCLI with an ``evaluate`` subcommand, whose model takes its class count from the data module."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {
            **LightningCLI.subcommands(),
            "evaluate": {"model", "datamodule"},
            "compare": {"model", "datamodule"},
            "export": {"model", "datamodule"},
            "pretrain": {"model", "datamodule"},
        }

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        """Parse as LightningCLI does, then check ``--ckpt_path`` before LightningCLI ``torch.load``s it.

        A truncated or foreign file otherwise fails deep inside torch with an error that names neither the argument
        nor the file; the check reads the file without changing it.

        A checkpoint stands alone: its model (backbone and head specs included) and data module hyper-parameters
        are given to the parser first, so ``ugmm-vision evaluate --ckpt_path best.ckpt`` needs no ``--config``;
        what the command line gives after them (a ``--config``, ``--data.*``) overrides them.
        """
        check_config_files(sys.argv[1:] if args is None else args)  # before jsonargparse's "Unexpected config"
        if isinstance(args, list) or args is None:
            args = checkpoint_config_args(list(sys.argv[1:] if args is None else args), self.subcommands())
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and ckpt_path not in ("last", "best", "hpc", "registry") and Path(ckpt_path).is_file():
            check_checkpoint_file(ckpt_path, argument="ckpt_path")

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        # The model owns its optimiser (auto_configure_optimizers=False): it builds the named parameter groups
        # (backbone/head learning rates, no weight decay on norms, biases and uGMM parameters). A top-level
        # --optimizer / --lr_scheduler is moved into the model's own (before_instantiate_classes), so it changes the
        # optimiser class and arguments while the groups are kept.
        parser.add_argument(
            "--optimizer",
            type=OptimizerCallable | None,
            default=None,
            help="Shorthand for --model.init_args.optimizer (the model's parameter groups are kept).",
        )
        parser.add_argument(
            "--lr_scheduler",
            type=LRSchedulerCallable | None,
            default=None,
            help="Shorthand for --model.init_args.lr_scheduler.",
        )

    def before_instantiate_classes(self) -> None:
        config = self.config[self.config.subcommand] if self.config.get("subcommand") else self.config
        for key in ("optimizer", "lr_scheduler"):
            if config.get(key) is not None:
                config[f"model.init_args.{key}"] = config[key]
                config[key] = None

    def instantiate_classes(self) -> None:
        """Instantiate as LightningCLI does, then refuse a model ``num_classes`` given explicitly that the data
        contradicts (the link from ``data.num_classes`` would otherwise replace it silently), and a
        ``--ckpt_path last`` with no last checkpoint outside ``fit`` (Lightning warns and goes on with untrained
        weights)."""
        config = self.config[self.config.subcommand] if self.config.get("subcommand") else self.config
        given = config.get("model.init_args.num_classes")  # before the link overwrites it
        super().instantiate_classes()
        give_model_specs(self.model, config)
        if config.get("ckpt_path") == "last" and self.config.get("subcommand") not in (None, "fit"):
            last_checkpoint(self.trainer)  # FileNotFoundError naming `ckpt_path` and the folders when there is none
        try:
            data_classes = getattr(self.datamodule, "num_classes", None)
        except (NotImplementedError, RuntimeError, FileNotFoundError):
            return  # the data module cannot tell yet; the model checks again at setup
        if given is not None and isinstance(data_classes, int) and given != data_classes:
            raise ValueError(
                f"Expected `model.init_args.num_classes` to equal the data's number of classes, got {given} while "
                f"{type(self.datamodule).__name__}.num_classes is {data_classes}; leave it out (it is taken from the "
                "data) or use data whose classes match"
            )


def check_config_files(args: object) -> None:
    """Raise ``ValueError`` naming the file when a ``--config`` file is empty, not YAML, or not a mapping.

    jsonargparse reports these as "Unexpected config", naming neither the file nor what was expected. Values
    that are not existing files (inline YAML, a missing path) are left to jsonargparse, which names them.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
        ...     _ = handle.write("- trainer\\n- model\\n")
        ...     handle.flush()
        ...     check_config_files(["fit", "--config", handle.name])
        Traceback (most recent call last):
        ...
        ValueError: Expected the `--config` file ... to hold a YAML mapping (key: value lines such as ...
    """
    if not isinstance(args, (list, tuple)):
        return
    for i, arg in enumerate(args):
        if arg in ("--config", "-c") and i + 1 < len(args):
            value = args[i + 1]
        elif isinstance(arg, str) and arg.startswith("--config="):
            value = arg.split("=", 1)[1]
        else:
            continue
        path = Path(str(value))
        if not path.is_file():
            continue
        try:
            content = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            reason = " ".join(str(err).split())[:200]
            raise ValueError(
                f"Expected the `--config` file {str(path)!r} to be YAML, got a parse error: {reason}"
            ) from err
        if not isinstance(content, dict):
            got = "an empty file" if content is None else f"a {type(content).__name__} at the top level"
            raise ValueError(
                f"Expected the `--config` file {str(path)!r} to hold a YAML mapping (key: value lines such as "
                f"`trainer:` or `model:`), got {got}"
            )


def build_cli(args: list[str] | None = None) -> UGMMCLI:
    """Parse ``args`` (default ``sys.argv``), run the subcommand, and return the CLI object (trainer, model, data)."""
    return UGMMCLI(
        ImageClassifier,
        LightningDataModule,
        trainer_class=UGMMTrainer,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,  # the model's configure_optimizers, with its parameter groups, is used
        parser_kwargs={"version": ugmm_vision.__version__},  # `ugmm-vision --version`
        args=args,
    )


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``ugmm-vision`` console script (returns nothing, so the exit status is 0 on success)."""
    build_cli(args)


if __name__ == "__main__":
    main()
