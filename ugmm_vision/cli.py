"""The ``ugmm-vision`` command: stock ``LightningCLI`` over :class:`ImageClassifier` and any data module.

Usage::

    ugmm-vision fit --config configs/digits.yaml
    ugmm-vision test --config configs/digits.yaml --ckpt_path outputs/digits/checkpoints/best.ckpt
"""

from __future__ import annotations

from lightning import LightningDataModule
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from ugmm_vision.models import ImageClassifier

__all__ = ["UGMMCLI", "main"]


class UGMMCLI(LightningCLI):
    """LightningCLI whose model takes its class count from the data module."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")


def main(args: list[str] | None = None) -> UGMMCLI:
    """Run the CLI (``args`` defaults to ``sys.argv``); returns the CLI object for programmatic use."""
    return UGMMCLI(
        ImageClassifier,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


if __name__ == "__main__":
    main()
