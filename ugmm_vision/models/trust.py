"""Which classes a checkpoint or a spec may name: the allow-list, and class factories stored as specs.

Class paths are code. A checkpoint that passes ``torch.load(weights_only=True)`` still carries strings such as
``hyper_parameters.optimizer.class_path``, and importing the module a string names runs that module: LightningCLI
(``--ckpt_path``) and ``load_from_checkpoint`` would import whatever a crafted file names. Every class path and
import-path-like string in a checkpoint's hyper-parameters must therefore name a class under one of
:data:`TRUSTED_MODULES` (torch's optimisers, schedulers and layers, timm, this package); anything else is refused,
before anything is imported, with a ``ValueError`` naming the file and the key (:func:`check_trusted_class_paths`).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "TRUSTED_MODULES",
    "UntrustedClassPathError",
    "check_trusted_class_paths",
    "factory_from_spec",
    "factory_spec",
    "resolve_trusted_class",
]

TRUSTED_MODULES: tuple[str, ...] = ("torch.optim", "torch.nn", "timm", "ugmm_vision")
"""Module prefixes whose classes a checkpoint may name (optimisers, schedulers, layers, backbones, heads)."""

# Lightning's own instantiator, which it allow-lists itself (lightning.pytorch.core.saving); the CLI stores it.
_TRUSTED_EXACT = frozenset({"lightning.pytorch.cli.instantiate_module", "pytorch_lightning.cli.instantiate_module"})
_CLASS_PATH_KEYS = ("class_path", "_class_path", "_instantiator")
_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


class UntrustedClassPathError(ValueError):
    """A checkpoint or spec names a class outside :data:`TRUSTED_MODULES`; it was refused before any import."""


def _in_trusted_module(dotted: str) -> bool:
    return any(dotted == root or dotted.startswith(root + ".") for root in TRUSTED_MODULES)


def _names_importable_module(text: str) -> bool:
    """Whether ``text`` looks like ``package.module.name`` of an installed top-level package (no code is run)."""
    if not _IMPORT_PATH.match(text):
        return False
    try:
        return importlib.util.find_spec(text.split(".", 1)[0]) is not None
    except (ImportError, ValueError):
        return False


def resolve_trusted_class(
    class_path: str, *, argument: str = "class_path", base: type | tuple[type, ...] | None = None
) -> type:
    """Import the class ``class_path`` names, only if it lies under :data:`TRUSTED_MODULES`.

    The module name is checked before it is imported, and the object found must be a class defined under a trusted
    module (so a trusted module's imported names, such as ``os``, do not pass), and a subclass of ``base`` if given.

    Raises:
        UntrustedClassPathError: the path is outside the trusted modules, or names no such class.

    Example:
        >>> import torch
        >>> resolve_trusted_class("torch.optim.SGD", base=torch.optim.Optimizer).__name__
        'SGD'
        >>> resolve_trusted_class("os.system")
        Traceback (most recent call last):
        ...
        ugmm_vision.models.trust.UntrustedClassPathError: Expected `class_path` to name a class under ...
    """
    trusted = ", ".join(TRUSTED_MODULES)
    refusal = f"Expected `{argument}` to name a class under {trusted}, got {class_path!r}"
    if not isinstance(class_path, str) or not _IMPORT_PATH.match(class_path) or not _in_trusted_module(class_path):
        raise UntrustedClassPathError(f"{refusal}; it was refused and nothing was imported")
    module_name, _, name = class_path.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise UntrustedClassPathError(f"{refusal}, which does not exist ({err})") from err
    if not isinstance(obj, type) or not _in_trusted_module(obj.__module__):
        raise UntrustedClassPathError(f"{refusal}, which is {type(obj).__name__} {obj!r}, not a class defined there")
    if base is not None and not issubclass(obj, base):
        raise UntrustedClassPathError(
            f"Expected `{argument}` to name a subclass of {base.__name__}, got {class_path!r}"
        )
    return obj


def check_trusted_class_paths(hyper_parameters: Any, path: Any, *, argument: str = "ckpt_path") -> None:
    """Refuse a checkpoint whose hyper-parameters name code outside :data:`TRUSTED_MODULES`.

    Walks the hyper-parameters: each ``class_path`` / ``_class_path`` value, Lightning's ``_instantiator``, and any
    other string that reads as an import path of an installed package (``os.system``) must lie under a trusted
    module. Only strings are inspected; nothing is imported.

    Raises:
        UntrustedClassPathError: naming the file and the offending key.

    Example:
        >>> check_trusted_class_paths({"optimizer": {"class_path": "torch.optim.AdamW"}}, "ok.ckpt")
        >>> check_trusted_class_paths({"optimizer": {"class_path": "os.system"}}, "bad.ckpt")
        Traceback (most recent call last):
        ...
        ugmm_vision.models.trust.UntrustedClassPathError: Expected `ckpt_path` to name only classes under ...
    """

    def refuse(key: str, value: str) -> None:
        raise UntrustedClassPathError(
            f"Expected `{argument}` to name only classes under {', '.join(TRUSTED_MODULES)}, got {str(path)!r} whose "
            f"hyper_parameters.{key} is {value!r}; importing it could run code, so the checkpoint was refused and "
            "nothing was imported. The file was left unchanged."
        )

    def walk(node: Any, key: str) -> None:
        if isinstance(node, Mapping):
            for name, value in node.items():
                child = f"{key}.{name}" if key else str(name)
                if name in _CLASS_PATH_KEYS and value is not None:
                    if not isinstance(value, str) or not (_in_trusted_module(value) or value in _TRUSTED_EXACT):
                        refuse(child, value)
                else:
                    walk(value, child)
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                walk(value, f"{key}[{i}]")
        elif isinstance(node, str) and _names_importable_module(node) and not _in_trusted_module(node):
            refuse(key, node)

    walk(hyper_parameters, "")


def factory_spec(factory: Any) -> Any:
    """A class, or a ``functools.partial`` of one, as ``{"class_path", "init_args"}`` (the CLI's form); else as is.

    Hyper-parameters go into the checkpoint, and ``torch.load`` (``weights_only=True`` by default since torch 2.6)
    refuses pickled classes such as ``torch.optim.AdamW``: stored as a spec, an optimiser factory keeps the
    checkpoint loadable. :func:`factory_from_spec` turns it back.

    Example:
        >>> import torch
        >>> factory_spec(functools.partial(torch.optim.SGD, lr=0.1))
        {'class_path': 'torch.optim.sgd.SGD', 'init_args': {'lr': 0.1}}
    """
    if isinstance(factory, functools.partial) and isinstance(factory.func, type) and not factory.args:
        cls, init_args = factory.func, dict(factory.keywords)
    elif isinstance(factory, type):
        cls, init_args = factory, {}
    else:
        return factory
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args}


def factory_from_spec(factory: Any, *, argument: str = "optimizer", base: type | tuple[type, ...] | None = None) -> Any:
    """The callable a :func:`factory_spec` dict stands for (a ``functools.partial``); anything else as is.

    The class path must lie under :data:`TRUSTED_MODULES` and name a class (a subclass of ``base`` if given): specs
    come from checkpoint files, and importing an arbitrary module runs it.

    Raises:
        UntrustedClassPathError: the spec names anything else; nothing was imported.

    Example:
        >>> factory_from_spec({"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1}})
        functools.partial(<class 'torch.optim.sgd.SGD'>, lr=0.1)
    """
    if not (isinstance(factory, Mapping) and "class_path" in factory):
        return factory
    cls = resolve_trusted_class(factory["class_path"], argument=f"{argument}.class_path", base=base)
    return functools.partial(cls, **dict(factory.get("init_args") or {}))
