"""The CLI's side of standalone checkpoints: a checkpoint's hyper-parameters as the model's configuration, and the
configuration's backbone and head specs in the model's hyper-parameters (used by :mod:`ugmm_vision.cli`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from jsonargparse import Namespace
from lightning import LightningModule

from ugmm_vision.models.checkpoints import read_checkpoint
from ugmm_vision.models.classifier import ImageClassifier
from ugmm_vision.specs import module_spec

__all__ = ["checkpoint_config_args", "give_model_specs"]


def give_model_specs(model: LightningModule, config: Namespace) -> None:
    """Put the configuration's backbone and head specs into the model's hyper-parameters.

    The model saves them in its checkpoints, which then rebuild it alone (:mod:`ugmm_vision.models.specs`); the
    objects jsonargparse built cannot tell their own arguments.

    Example:
        >>> from ugmm_vision.backbones.identity import IdentityBackbone
        >>> from ugmm_vision.heads import LinearHead
        >>> model = ImageClassifier(IdentityBackbone(4), LinearHead(4, 3))
        >>> head = Namespace(class_path="ugmm_vision.heads.LinearHead", init_args=Namespace(norm_layer=None))
        >>> give_model_specs(model, Namespace(model=Namespace(class_path="x", init_args=Namespace(head=head))))
        >>> model.hparams["head"]
        {'class_path': 'ugmm_vision.heads.LinearHead', 'init_args': {'norm_layer': None}}
    """
    init_args = config.get("model.init_args") if config.get("model.class_path") else config.get("model")
    for key in ("backbone", "head"):
        value = init_args.get(key) if isinstance(init_args, Namespace) else None
        spec = module_spec(value.as_dict() if isinstance(value, Namespace) else value)
        if spec is not None and isinstance(model, ImageClassifier):
            model.hparams[key] = spec


def checkpoint_config_args(args: list[str], subcommands: dict[str, Any]) -> list[str]:
    """``args`` with ``--model``/``--data`` from the ``--ckpt_path`` checkpoint's hyper-parameters after the subcommand.

    The file is read with ``weights_only=True`` and its class paths checked against the allow-list
    (:func:`~ugmm_vision.models.checkpoints.read_checkpoint`) before anything it names is imported.

    Example:
        >>> checkpoint_config_args(["fit", "--config", "c.yaml"], {"fit": set()})  # no --ckpt_path: unchanged
        ['fit', '--config', 'c.yaml']
    """
    position = next((i for i, arg in enumerate(args) if arg in subcommands), None)
    ckpt_path = None
    for i, arg in enumerate(args):
        if arg == "--ckpt_path" and i + 1 < len(args):
            ckpt_path = args[i + 1]
        elif arg.startswith("--ckpt_path="):
            ckpt_path = arg.split("=", 1)[1]
    if position is None or not ckpt_path or not Path(ckpt_path).is_file():
        return args

    def load() -> Any:
        return torch.load(ckpt_path, map_location="cpu", mmap=True, weights_only=True)

    checkpoint = read_checkpoint(ckpt_path, load, argument="ckpt_path")
    extra = []
    for flag, key in (("--model", "hyper_parameters"), ("--data", "datamodule_hyper_parameters")):
        hparams = {k: v for k, v in dict(checkpoint.get(key) or {}).items() if k != "_instantiator"}
        class_path = hparams.pop("_class_path", None)
        if class_path is not None:
            extra += [flag, json.dumps({"class_path": class_path, "init_args": hparams})]
    return [*args[: position + 1], *extra, *args[position + 1 :]]
