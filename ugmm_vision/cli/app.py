"""``UGMMCLI``, ``build_cli`` and ``main``: the stock ``LightningCLI`` over :class:`ImageClassifier` and any data
module, with the subcommands of :class:`~ugmm_vision.cli.trainer.UGMMTrainer`, standalone checkpoints and checked
``--config`` files and ``--ckpt_path``."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from lightning import LightningDataModule
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, LRSchedulerCallable, OptimizerCallable

import ugmm_vision
from ugmm_vision.cli.trainer import UGMMTrainer
from ugmm_vision.models import ImageClassifier
from ugmm_vision.models.checkpoint_config import checkpoint_config_args, give_model_specs
from ugmm_vision.models.checkpoint_loading import last_checkpoint
from ugmm_vision.models.checkpoints import check_checkpoint_file

__all__ = ["UGMMCLI", "build_cli", "check_config_files", "main"]


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
