"""Reading checkpoint files safely: every failure names the file, and the file is only ever read.

A truncated checkpoint (an interrupted copy or save) makes ``torch.load`` fail with messages such as
``OSError: [Errno 22] Invalid argument`` or ``KeyError: 101`` that name neither the file nor the cause; a file of
another kind (a plain ``state_dict``, a text file) fails inside Lightning with ``KeyError:
'pytorch-lightning_version'``. The functions here turn those into a ``ValueError`` that names the argument and the
file. Files are opened read-only: a failed load leaves the checkpoint byte-identical.

:class:`CheckedCheckpointIO` applies the check to a Trainer's loads (``trainer.test(ckpt_path=...)``, the CLI's
``--ckpt_path``); :class:`~ugmm_vision.models.ImageClassifier` installs it in ``setup`` and checks its own
``load_from_checkpoint`` with :func:`check_checkpoint_file`.

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
import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import CheckpointIO
from torch import nn

__all__ = [
    "TRUSTED_MODULES",
    "CheckedCheckpointIO",
    "UntrustedClassPathError",
    "check_checkpoint_file",
    "check_state_dict_fits",
    "check_trusted_class_paths",
    "factory_from_spec",
    "factory_spec",
    "read_checkpoint",
]

_WEIGHTS_ONLY_REFUSAL = "Unsupported global"  # torch refusing a pickled class: a trust decision, not damage
_LIGHTNING_KEYS = ("state_dict", "pytorch-lightning_version")

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
        >>> resolve_trusted_class("torch.optim.SGD", base=torch.optim.Optimizer).__name__
        'SGD'
        >>> resolve_trusted_class("os.system")
        Traceback (most recent call last):
        ...
        ugmm_vision.models.checkpoints.UntrustedClassPathError: Expected `class_path` to name a class under ...
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
        ugmm_vision.models.checkpoints.UntrustedClassPathError: Expected `ckpt_path` to name only classes under ...
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


def _is_local(path: Any) -> bool:
    return isinstance(path, (str, Path)) and "://" not in str(path)


def _describe(obj: Any) -> str:
    if isinstance(obj, Mapping):
        keys = [str(k) for k in list(obj)[:4]]
        more = ", …" if len(obj) > 4 else ""
        return f"a dict with keys [{', '.join(keys)}{more}]"
    return f"a {type(obj).__name__}"


def read_checkpoint(path: Any, load: Callable[[], Any], *, argument: str = "ckpt_path") -> Any:
    """Run ``load`` (which reads ``path``) and check that it gave a Lightning checkpoint.

    Args:
        path: the checkpoint's path, for the messages and the existence check.
        load: reads and returns the checkpoint (``torch.load`` or a ``CheckpointIO``'s ``load_checkpoint``).
        argument: the name of the argument that gave the path, for the messages.

    Returns:
        The loaded checkpoint.

    Raises:
        FileNotFoundError: ``path`` is a local path with no file.
        ValueError: the file cannot be read (truncated, not a PyTorch file) or is not a Lightning checkpoint.
        UntrustedClassPathError: its hyper-parameters name a class outside :data:`TRUSTED_MODULES`.
        pickle.UnpicklingError: torch refused to unpickle a class with ``weights_only=True``; that is about trust,
            not damage, and torch's message says how to proceed, so it is passed on unchanged.
    """
    if _is_local(path) and not Path(path).is_file():
        raise FileNotFoundError(f"Expected `{argument}` to be an existing checkpoint file, got {str(path)!r}")
    try:
        checkpoint = load()
    except pickle.UnpicklingError as err:
        if _WEIGHTS_ONLY_REFUSAL in str(err):
            raise
        raise _unreadable(path, argument, err) from err
    except Exception as err:  # whatever torch.load raises on a damaged file: OSError, RuntimeError, KeyError, …
        raise _unreadable(path, argument, err) from err
    if not isinstance(checkpoint, Mapping) or not all(key in checkpoint for key in _LIGHTNING_KEYS):
        raise ValueError(
            f"Expected `{argument}` to be a Lightning checkpoint (a dict with 'state_dict' and "
            f"'pytorch-lightning_version'), got {str(path)!r} holding {_describe(checkpoint)}; a plain state_dict "
            "loads with model.load_state_dict(torch.load(path)). The file was left unchanged."
        )
    if not isinstance(checkpoint["state_dict"], Mapping):
        raise ValueError(
            f"Expected `{argument}` to hold a 'state_dict' dict of tensors, got {str(path)!r} whose 'state_dict' "
            f"is {_describe(checkpoint['state_dict'])}. The file was left unchanged."
        )
    check_trusted_class_paths(checkpoint.get("hyper_parameters", {}), path, argument=argument)
    return checkpoint


def _unreadable(path: Any, argument: str, err: BaseException) -> ValueError:
    reason = f"{type(err).__name__}: {err}".splitlines()[0][:200]
    return ValueError(
        f"Expected `{argument}` to be a readable PyTorch Lightning checkpoint, got {str(path)!r}, which could not be "
        f"read ({reason}); it may be truncated (an interrupted save or copy) or not a checkpoint at all. "
        "The file was left unchanged."
    )


def check_checkpoint_file(path: Any, *, argument: str = "checkpoint_path") -> None:
    """Check that ``path`` reads as a Lightning checkpoint without loading its tensors.

    The check memory-maps the file (``torch.load(..., mmap=True, weights_only=True)``), so tensor data is not
    read and no pickled code runs. A checkpoint that holds pickled classes (allowed by Lightning with
    ``weights_only=False``) passes: its structure is then left to the load itself.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder) / "broken.ckpt"
        ...     _ = path.write_bytes(b"not a checkpoint")
        ...     check_checkpoint_file(path)
        Traceback (most recent call last):
        ...
        ValueError: Expected `checkpoint_path` to be a readable PyTorch Lightning checkpoint, got ...
    """

    def load() -> Any:
        try:
            return torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # a legacy (non-zip) torch file

    if not _is_local(path):
        return
    try:
        read_checkpoint(path, load, argument=argument)
    except pickle.UnpicklingError as err:
        if _WEIGHTS_ONLY_REFUSAL not in str(err):
            raise


def check_state_dict_fits(
    model: nn.Module, state_dict: Mapping[str, Any], path: Any, *, argument: str = "ckpt_path"
) -> None:
    """Raise ``ValueError`` naming the file if ``state_dict`` does not fit ``model`` (keys or shapes).

    Example:
        >>> check_state_dict_fits(nn.Linear(2, 3), {"weight": torch.zeros(3, 2)}, "m.ckpt")
        Traceback (most recent call last):
        ...
        ValueError: Expected `ckpt_path` to be a checkpoint of this Linear, got 'm.ckpt', which lacks 1 of its ...
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong_shape = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and isinstance(state_dict[k], torch.Tensor) and state_dict[k].shape != own[k].shape
    ]
    if not (missing or unexpected or wrong_shape):
        return

    def listed(names: list[str], sep: str = ", ") -> str:
        return sep.join(names[:3]) + (", …" if len(names) > 3 else "")

    parts = []
    if missing:
        parts.append(f"lacks {len(missing)} of its tensors ({listed(missing)})")
    if unexpected:
        parts.append(f"has {len(unexpected)} unknown ones ({listed(unexpected)})")
    if wrong_shape:
        parts.append(f"has {len(wrong_shape)} of another shape ({listed(wrong_shape, '; ')})")
    raise ValueError(
        f"Expected `{argument}` to be a checkpoint of this {type(model).__name__}, got {str(path)!r}, which "
        f"{', '.join(parts)}: was it saved with another backbone, head or number of classes? "
        "The file was left unchanged."
    )


class CheckedCheckpointIO(CheckpointIO):
    """A ``CheckpointIO`` that reads through another and turns a failed or foreign load into a clear error.

    Saving and removing are passed through unchanged.

    Args:
        inner: the checkpoint IO that does the reading and writing (the strategy's own).
    """

    def __init__(self, inner: CheckpointIO) -> None:
        self.inner = inner

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        self.inner.save_checkpoint(checkpoint, path, storage_options=storage_options)

    def load_checkpoint(self, path: Any, map_location: Any | None = None, weights_only: bool | None = None) -> Any:
        kwargs: dict[str, Any] = {"weights_only": weights_only}
        if map_location is not None:  # else the inner IO's own default (TorchCheckpointIO keeps storages as saved)
            kwargs["map_location"] = map_location
        return read_checkpoint(path, lambda: self.inner.load_checkpoint(path, **kwargs))

    def remove_checkpoint(self, path: Any) -> None:
        self.inner.remove_checkpoint(path)

    def teardown(self) -> None:
        self.inner.teardown()


def factory_spec(factory: Any) -> Any:
    """A class, or a ``functools.partial`` of one, as ``{"class_path", "init_args"}`` (the CLI's form); else as is.

    Hyper-parameters go into the checkpoint, and ``torch.load`` (``weights_only=True`` by default since torch 2.6)
    refuses pickled classes such as ``torch.optim.AdamW``: stored as a spec, an optimiser factory keeps the
    checkpoint loadable. :func:`factory_from_spec` turns it back.

    Example:
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
