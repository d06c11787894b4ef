"""Checkpoint checks, all in one place: every failed load names the file, and the file is only ever read.

A truncated checkpoint (an interrupted copy or save) makes ``torch.load`` fail with messages such as
``OSError: [Errno 22] Invalid argument`` or ``KeyError: 101`` that name neither the file nor the cause; a file of
another kind (a plain ``state_dict``, a text file) fails inside Lightning with ``KeyError:
'pytorch-lightning_version'``; a checkpoint of another model fails with a long ``load_state_dict`` report. The checks
here turn those into a ``ValueError`` that names the argument and the file. Files are opened read-only: a failed
load leaves the checkpoint byte-identical. Class paths in a checkpoint are checked against an allow-list before
anything is imported (:mod:`ugmm_vision.models.trust`).

Where they apply:

* :func:`read_checkpoint` — any load (``torch.load`` or a ``CheckpointIO``'s), followed by the structure and trust
  checks; :func:`check_checkpoint_file` — a file, before Lightning reads it;
* :func:`check_state_dict_fits` — the weights fit the model (keys and shapes);
* :class:`CheckedCheckpointIO` — a Trainer's loads (``trainer.test(ckpt_path=...)``, the CLI's ``--ckpt_path``);
* :class:`CheckedLightningModule` — a LightningModule that applies all of the above: it installs
  :class:`CheckedCheckpointIO` in ``setup``, checks the weights in ``on_load_checkpoint``, and checks the file and
  explains failures in ``load_from_checkpoint``. :class:`~ugmm_vision.models.ImageClassifier` is one.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Self

import torch
from lightning import LightningModule
from lightning.fabric.plugins import CheckpointIO
from torch import nn

from ugmm_vision.models.trust import (  # re-exported: they were defined here before ugmm_vision.models.trust
    TRUSTED_MODULES,
    UntrustedClassPathError,
    check_trusted_class_paths,
    factory_from_spec,
    factory_spec,
    resolve_trusted_class,
)

__all__ = [
    "TRUSTED_MODULES",
    "CheckedCheckpointIO",
    "CheckedLightningModule",
    "UntrustedClassPathError",
    "check_checkpoint_file",
    "check_state_dict_fits",
    "check_trusted_class_paths",
    "factory_from_spec",
    "factory_spec",
    "read_checkpoint",
    "resolve_trusted_class",
]

_WEIGHTS_ONLY_REFUSAL = "Unsupported global"  # torch refusing a pickled class: a trust decision, not damage
_LIGHTNING_KEYS = ("state_dict", "pytorch-lightning_version")


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


class CheckedLightningModule(LightningModule):
    """A ``LightningModule`` whose checkpoint loads, by a Trainer or by :meth:`load_from_checkpoint`, name the file
    when it is missing, truncated, foreign, untrusted or a checkpoint of another model.

    Subclasses that override ``setup`` call ``super().setup(stage)``.
    """

    def setup(self, stage: str) -> None:
        strategy = self.trainer.strategy
        if not isinstance(strategy.checkpoint_io, CheckedCheckpointIO):
            strategy.checkpoint_io = CheckedCheckpointIO(strategy.checkpoint_io)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Under a Trainer (test/evaluate --ckpt_path): a checkpoint of another model fails here, naming the file.
        # load_from_checkpoint (no trainer) reports the same from Lightning's own error, below.
        if self._trainer is not None and self.strict_loading:
            check_state_dict_fits(self, checkpoint["state_dict"], self.trainer.ckpt_path)

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | Path | IO,
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        weights_only: bool | None = None,
        **kwargs: Any,
    ) -> Self:
        """Lightning's ``load_from_checkpoint``, with errors that name the file when it is missing, truncated,
        foreign, or a checkpoint of another model. The file is only read; a failure leaves it unchanged.

        A constructor argument that the checkpoint does not hold (a backbone or head saved without its spec) is
        asked for by name: pass it as a keyword, e.g. ``load_from_checkpoint(path, head=UGMMHead)``.
        """
        check_checkpoint_file(checkpoint_path)
        try:
            return super().load_from_checkpoint(
                checkpoint_path,
                map_location=map_location,
                hparams_file=hparams_file,
                strict=strict,
                weights_only=weights_only,
                **kwargs,
            )
        except TypeError as err:
            # Only this class's own constructor lacking an argument, not a TypeError from deeper down.
            if not str(err).startswith(f"{cls.__qualname__}.__init__() missing"):
                raise
            missing = re.findall(r"'(\w+)'", str(err))
            what = " and ".join(missing)
            raise ValueError(
                f"Expected `checkpoint_path` to hold the {what} spec, got {str(checkpoint_path)!r}, saved from a "
                f"model whose {what} did not record its constructor arguments (or before specs were stored): pass "
                + ", ".join(f"{name}=..." for name in missing)
                + " to load_from_checkpoint. The file was left unchanged."
            ) from err
        except RuntimeError as err:
            if "Error(s) in loading state_dict" not in str(err):
                raise
            detail = " ".join(str(err).split())[:300]
            raise ValueError(
                f"Expected `checkpoint_path` to be a checkpoint of this model, got {str(checkpoint_path)!r}: "
                f"{detail} (was it saved with another backbone, head or number of classes?). "
                "The file was left unchanged."
            ) from err
