"""Loading a checkpoint's weights into a configured model outside ``fit``/``test``/``predict`` (e.g. ``export``).

The trainer's own commands read ``--ckpt_path`` through :class:`~ugmm_vision.models.checkpoints.CheckedCheckpointIO`
and check the weights fit in :meth:`~ugmm_vision.models.checkpoints.CheckedLightningModule.on_load_checkpoint`;
:func:`load_checkpoint_weights` gives a command that only needs the weights the same checks and the same meaning
of ``"last"``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from ugmm_vision.models.checkpoints import check_state_dict_fits, read_checkpoint

__all__ = ["last_checkpoint", "load_checkpoint_weights"]


def load_checkpoint_weights(trainer: Any, model: nn.Module, ckpt_path: str | os.PathLike) -> str:
    """Load a checkpoint's weights into ``model`` through the checked reader; returns the file it read.

    ``"last"`` is resolved as ``fit``/``test``/``predict`` resolve it (the newest ``last*.ckpt`` of the
    trainer's ``ModelCheckpoint`` folders, or an on-exception checkpoint); there being none is an error here,
    not a warning, because exporting untrained weights is never what was asked for.

    Raises:
        FileNotFoundError: no such file (or no last checkpoint).
        ValueError: naming ``ckpt_path`` and the file: a folder, an unreadable or foreign file, or a checkpoint
            of another model (another head, backbone or class count).
    """
    if ckpt_path == "last":
        ckpt_path = last_checkpoint(trainer)
    elif ckpt_path in ("best", "hpc", "registry"):
        raise ValueError(
            f"Expected `ckpt_path` to be a checkpoint file or 'last' for export, got {ckpt_path!r} (which names a "
            "checkpoint only within a fit run); pass the file, e.g. outputs/<run>/checkpoints/best.ckpt"
        )
    if Path(ckpt_path).is_dir():
        raise ValueError(f"Expected `ckpt_path` to be a checkpoint file, got {str(ckpt_path)!r}, which is a folder")
    checkpoint_io = trainer.strategy.checkpoint_io
    checkpoint = read_checkpoint(
        ckpt_path, lambda: checkpoint_io.load_checkpoint(ckpt_path, map_location="cpu", weights_only=True)
    )
    check_state_dict_fits(model, checkpoint["state_dict"], ckpt_path)
    model.load_state_dict(checkpoint["state_dict"])
    return str(ckpt_path)


def last_checkpoint(trainer: Any) -> str:
    """The file ``ckpt_path="last"`` stands for, found as Lightning's ``fit``/``test``/``predict`` find it.

    Candidates: the trainer's ``OnExceptionCheckpoint`` files and the ``last*.ckpt`` files in each
    ``ModelCheckpoint``'s folder (resolved from the logger or ``default_root_dir`` when not set); the newest wins.
    Lightning's own search is private (``ModelCheckpoint._find_last_checkpoints``), hence this public-API copy.

    Raises:
        FileNotFoundError: naming ``ckpt_path`` and the folders searched, when there is none.
    """
    from lightning.pytorch.callbacks import ModelCheckpoint, OnExceptionCheckpoint

    candidates = [cb.ckpt_path for cb in trainer.callbacks if isinstance(cb, OnExceptionCheckpoint)]
    folders = []
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint):
            if callback.dirpath is None:  # resolved from the logger / default_root_dir, as in fit
                callback.setup(trainer, trainer.lightning_module, stage="predict")
            folders.append(Path(callback.dirpath))
            candidates += Path(callback.dirpath).glob(f"{callback.CHECKPOINT_NAME_LAST}*{callback.FILE_EXTENSION}")
    existing = [Path(p) for p in candidates if p and Path(p).is_file()]
    if not existing:
        where = ", ".join(str(f) for f in folders) or "no ModelCheckpoint callback is configured"
        raise FileNotFoundError(
            f"Expected `ckpt_path`='last' to find a last checkpoint, found none (looked in: {where}); pass the "
            "file, or train with ModelCheckpoint(save_last=True)"
        )
    return str(max(existing, key=lambda p: p.stat().st_mtime))
