"""Backbones and heads as ``{"class_path", "init_args"}`` specs, so that a checkpoint can rebuild its own model.

A checkpoint stores the model's hyper-parameters next to its weights, and ``torch.load(weights_only=True)`` only
reads plain data (numbers, strings, lists, dicts, tensors). A backbone or head is therefore saved as the spec the
CLI's YAML already uses — the class's import path and its constructor arguments — and rebuilt from it by
:func:`module_from_spec`, which imports only classes under :data:`~ugmm_vision.models.checkpoints.TRUSTED_MODULES`
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
from collections.abc import Mapping
from typing import Any

from torch import nn

from ugmm_vision.models.checkpoints import resolve_trusted_class
from ugmm_vision.specs import is_spec, module_spec

__all__ = ["module_from_spec", "module_spec"]


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
