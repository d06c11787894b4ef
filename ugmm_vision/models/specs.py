"""Backbones and heads as ``{"class_path", "init_args"}`` specs, so that a checkpoint can rebuild its own model.

A checkpoint stores the model's hyper-parameters next to its weights, and ``torch.load(weights_only=True)`` only
reads plain data (numbers, strings, lists, dicts, tensors). A backbone or head is therefore saved as the spec the
CLI's YAML already uses — the class's import path and its constructor arguments — and rebuilt from it by
:func:`module_from_spec`, which imports only classes under :data:`~ugmm_vision.models.trust.TRUSTED_MODULES`
(the same allow-list that every checkpoint load applies, :func:`~ugmm_vision.models.checkpoints.read_checkpoint`).

Where a spec comes from (:func:`module_spec`):

* a spec already (the CLI passes its configuration, nested specs included);
* a class or a ``functools.partial`` of one (a head factory such as ``UGMMHead``);
* a module that recorded its constructor arguments (:func:`ugmm_vision.specs.record_init_args`; the backbones of
  :mod:`ugmm_vision.backbones` do).

Anything else (a module whose arguments are unknown, an argument that is not plain data) has no spec: the model
still trains, and loading its checkpoint asks for that part (``load_from_checkpoint(path, backbone=...)``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from torch import nn

from ugmm_vision.checks import check_int
from ugmm_vision.models.trust import factory_spec, resolve_trusted_class
from ugmm_vision.specs import is_spec, module_spec

__all__ = ["build_backbone_and_head", "module_from_spec", "module_spec", "standalone_hparams"]


def _build(value: Any, argument: str) -> Any:
    """Nested specs become factories (``functools.partial`` of their class), as jsonargparse gives callables."""
    if is_spec(value):
        return module_from_spec(value, argument=argument, base=None, instantiate=False)
    if isinstance(value, Mapping):
        return {k: _build(v, f"{argument}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_build(v, f"{argument}[{i}]") for i, v in enumerate(value)]
    return value


def module_from_spec(
    spec: Mapping[str, Any], *, argument: str, base: type | None = nn.Module, instantiate: bool = True
) -> Any:
    """Rebuild what :func:`module_spec` describes: an instance, or with ``instantiate=False`` a factory.

    The class path, and every nested one in ``init_args``, must name a class under the trusted modules; nested
    specs are passed to the constructor as factories (``norm_layer=functools.partial(nn.LayerNorm, eps=1e-5)``).

    Args:
        spec: ``{"class_path": ..., "init_args": {...}}``.
        argument: the argument's name, for the messages (``"backbone"``).
        base: the class must be a subclass of this (None: any class).
        instantiate: build the instance (else return ``functools.partial(cls, **init_args)``).

    Raises:
        UntrustedClassPathError: a class path outside the trusted modules; nothing was imported.
        ValueError: ``spec`` is not a spec.

    Example:
        >>> backbone = module_from_spec({"class_path": "ugmm_vision.backbones.SmallCNN",
        ...                              "init_args": {"in_chans": 1, "widths": [8, 16]}}, argument="backbone")
        >>> backbone.num_features
        16
    """
    if not is_spec(spec):
        raise ValueError(f"Expected `{argument}` to be a {{'class_path', 'init_args'}} spec, got {spec!r}")
    cls = resolve_trusted_class(spec["class_path"], argument=f"{argument}.class_path", base=base)
    init_args = {k: _build(v, f"{argument}.init_args.{k}") for k, v in dict(spec.get("init_args") or {}).items()}
    return cls(**init_args) if instantiate else functools.partial(cls, **init_args)


def standalone_hparams(hparams: MutableMapping[str, Any], owner: type, **parts: Any) -> None:
    """Make a model's saved hyper-parameters rebuild it alone, with ``torch.load(weights_only=True)``.

    Optimiser and scheduler factories become specs (:func:`~ugmm_vision.models.trust.factory_spec`), each of
    ``parts`` (``backbone=..., head=...``) its spec where its arguments are known (else loading the checkpoint asks
    for it), and ``_class_path`` names ``owner``. The CLI's jsonargparse instantiator is dropped:
    ``load_from_checkpoint`` builds through ``__init__``, which imports the specs' classes through the allow-list.

    Example:
        >>> import torch
        >>> hparams = {"optimizer": torch.optim.SGD, "_instantiator": "x"}
        >>> standalone_hparams(hparams, nn.Linear, head=nn.LayerNorm)
        >>> hparams["optimizer"], hparams["_class_path"], "_instantiator" in hparams
        ({'class_path': 'torch.optim.sgd.SGD', 'init_args': {}}, 'torch.nn.modules.linear.Linear', False)
    """
    for key in ("optimizer", "lr_scheduler"):
        if key in hparams:
            hparams[key] = factory_spec(hparams[key])
    for key, part in parts.items():
        spec = module_spec(part)
        if spec is not None:
            hparams[key] = spec
    hparams.pop("_instantiator", None)
    hparams["_class_path"] = f"{owner.__module__}.{owner.__qualname__}"


def build_backbone_and_head(
    backbone: nn.Module | Mapping[str, Any],
    head: nn.Module | Callable[[int, int], nn.Module] | Mapping[str, Any],
    num_classes: int | None,
) -> tuple[nn.Module, nn.Module, int]:
    """The backbone, the head built for its features, and the number of classes, checked to fit together.

    Args:
        backbone: a module exposing an integer ``num_features``, or its spec.
        head: a module, a factory called as ``head(backbone.num_features, num_classes)``, or the factory's spec.
        num_classes: number of classes; required when ``head`` is a factory, else read from the head.

    Raises:
        ValueError: naming the argument that does not fit.

    Example:
        >>> from ugmm_vision.backbones.identity import IdentityBackbone
        >>> from ugmm_vision.heads import LinearHead
        >>> backbone, head, num_classes = build_backbone_and_head(IdentityBackbone(4), LinearHead, 3)
        >>> head.in_features, num_classes
        (4, 3)
    """
    for name, part in (("backbone", backbone), ("head", head)):
        if part is None:
            raise ValueError(f"Expected `{name}` to be a module, a factory or a spec, got None")
    if isinstance(backbone, Mapping):
        backbone = module_from_spec(backbone, argument="backbone")
    if isinstance(head, Mapping):
        head = module_from_spec(head, argument="head", instantiate=False)
    in_features = getattr(backbone, "num_features", None)
    if not isinstance(in_features, int):
        raise ValueError(f"Expected `backbone` to expose an integer `num_features`, got {type(backbone).__name__}")
    if not isinstance(head, nn.Module):
        if num_classes is None:
            raise ValueError("Expected `num_classes` when `head` is a factory, got None")
        head = head(in_features, num_classes)
    head_in = getattr(head, "in_features", in_features)
    if head_in != in_features:
        raise ValueError(
            f"Expected the head's `in_features` to equal the backbone's num_features={in_features}, got {head_in}"
        )
    head_classes = getattr(head, "num_classes", num_classes)
    if num_classes is not None and head_classes != num_classes:
        raise ValueError(f"Expected the head's `num_classes` to equal num_classes={num_classes}, got {head_classes}")
    return backbone, head, check_int("num_classes", head_classes, low=2)
