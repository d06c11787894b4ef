"""Objects as ``{"class_path", "init_args"}`` specs: plain data that a weights-only checkpoint can hold.

The ground floor of :mod:`ugmm_vision.models.specs` (which rebuilds objects from specs through the allow-list):
backbones record their constructor arguments here (:func:`record_init_args`), so a checkpoint of a model built on
them can rebuild them.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from lightning.fabric.utilities.data import AttributeDict
from torch import nn

__all__ = ["NotPlainError", "is_spec", "module_spec", "plain_value", "record_init_args"]

_PLAIN = (type(None), bool, int, float, str)


class NotPlainError(TypeError):
    """A value that is neither plain data nor a class (or keyword ``functools.partial`` of one)."""


def is_spec(value: Any) -> bool:
    """Whether ``value`` is a ``{"class_path": str, ...}`` mapping."""
    return isinstance(value, Mapping) and isinstance(value.get("class_path"), str)


def plain_value(value: Any) -> Any:
    """``value`` as weights-only data: classes and keyword partials of classes become specs, paths strings.

    Raises:
        NotPlainError: any other object (a lambda, a module instance without recorded arguments, …).

    Example:
        >>> plain_value({"norm": nn.LayerNorm, "sizes": (8, 16)})
        {'norm': {'class_path': 'torch.nn.modules.normalization.LayerNorm', 'init_args': {}}, 'sizes': [8, 16]}
    """
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    spec = module_spec(value)
    if spec is None:
        raise NotPlainError(f"{type(value).__name__} is not plain data")
    return spec


def module_spec(obj: Any) -> dict[str, Any] | None:
    """The ``{"class_path", "init_args"}`` spec that rebuilds ``obj``, or None when it cannot be known.

    Args:
        obj: a spec, a class, a ``functools.partial`` of a class (keywords only), or a module whose constructor
            arguments were recorded by :func:`record_init_args`.

    Example:
        >>> from ugmm_vision.backbones import SmallCNN
        >>> module_spec(SmallCNN(in_chans=1, widths=(8, 16)))["init_args"]["widths"]
        [8, 16]
        >>> module_spec(nn.Linear(2, 3)) is None  # its arguments were not recorded
        True
    """
    try:
        if is_spec(obj):
            return {"class_path": obj["class_path"], "init_args": plain_value(dict(obj.get("init_args") or {}))}
        if isinstance(obj, functools.partial) and isinstance(obj.func, type) and not obj.args:
            cls, init_args = obj.func, dict(obj.keywords)
        elif isinstance(obj, type):
            cls, init_args = obj, {}
        elif isinstance(obj, nn.Module) and getattr(obj, "_init_args_recorded", False):
            cls, init_args = type(obj), dict(obj.hparams)
        else:
            return None
        return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": plain_value(init_args)}
    except NotPlainError:
        return None


def record_init_args(module: Any) -> None:
    """Keep the calling constructor's arguments in ``module.hparams`` (Lightning's ``HyperparametersMixin``), as
    plain data. Call it first thing in ``__init__``, before any argument is reassigned.

    Arguments that are not plain data are not kept at all (``hparams`` stays empty and the module has no spec):
    jsonargparse, for instance, passes ``norm_layer`` as a partial holding a lock, which neither a checkpoint nor
    ``copy.deepcopy`` can take (so ``save_hyperparameters``, which deep-copies, is not used). A model built by the
    CLI takes its spec from the CLI's configuration instead.
    """
    frame = inspect.currentframe().f_back  # the constructor that called us
    names = [name for name in inspect.signature(type(module).__init__).parameters if name != "self"]
    arguments = {name: frame.f_locals[name] for name in names if name in frame.f_locals}
    try:
        plain, recorded = plain_value(arguments), True
    except NotPlainError:
        plain, recorded = {}, False
    module._hparams = AttributeDict(plain)
    module._hparams_initial = AttributeDict(copy.deepcopy(plain))
    module._init_args_recorded = recorded
