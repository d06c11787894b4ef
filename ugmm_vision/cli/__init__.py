"""The ``ugmm-vision`` command: stock ``LightningCLI`` over :class:`~ugmm_vision.models.ImageClassifier` and any
data module.

Usage::

    ugmm-vision fit --config configs/digits.yaml
    ugmm-vision test --config configs/digits.yaml --ckpt_path outputs/digits/checkpoints/best.ckpt
    ugmm-vision evaluate --config configs/digits.yaml --ckpt_path outputs/digits/checkpoints/best.ckpt
    ugmm-vision compare --config configs/digits.yaml --config configs/compare_digits.yaml
    ugmm-vision export --config configs/digits.yaml --ckpt_path outputs/digits/checkpoints/best.ckpt --format onnx
    ugmm-vision pretrain --config configs/pretrain_fashion_mnist.yaml

``evaluate``, ``compare``, ``export`` and ``pretrain`` are further subcommands, added through LightningCLI's public
extension points: a ``Trainer`` subclass with the methods (``trainer_class``: :mod:`ugmm_vision.cli.trainer`) and
:meth:`LightningCLI.subcommands` listing them (:mod:`ugmm_vision.cli.app`). ``python -m ugmm_vision.cli`` runs
the same command.
"""

from ugmm_vision.cli.app import UGMMCLI, build_cli, check_config_files, main
from ugmm_vision.cli.trainer import UGMMTrainer

__all__ = ["UGMMCLI", "UGMMTrainer", "build_cli", "check_config_files", "main"]
