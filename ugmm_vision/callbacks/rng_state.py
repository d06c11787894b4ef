"""``RNGStateCheckpoint``: random number generator states saved in checkpoints and restored on resume.

Lightning checkpoints hold the weights, optimisers, schedulers, loop counters and the training loader's
position, but not the global random number generators. A run resumed with ``fit(ckpt_path=...)`` reseeds them
with ``seed_everything`` and so draws different dropout and mixing-dropout masks (and augmentations) from the
uninterrupted run. With this callback the resumed run continues their sequence exactly.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

__all__ = ["RNGStateCheckpoint", "get_rng_states", "set_rng_states"]


def get_rng_states() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's global generators (CUDA ones too when CUDA is initialised).

    Example:
        >>> states = get_rng_states()
        >>> first = torch.rand(2)
        >>> set_rng_states(states)
        >>> torch.equal(torch.rand(2), first)
        True
    """
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()  # noqa: NPY002 - what seed_everything seeds
    states: dict[str, Any] = {
        "python": random.getstate(),
        # Tensors and plain numbers only, so checkpoints still load with torch.load(weights_only=True).
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached_gaussian)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore generator states from :func:`get_rng_states` (a CUDA state is skipped where CUDA is not in use)."""
    missing = {"python", "numpy", "torch"} - set(states)
    if missing:
        raise ValueError(f"Expected `states` from get_rng_states(), missing {sorted(missing)}")
    random.setstate(states["python"])
    name, keys, pos, has_gauss, cached_gaussian = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached_gaussian))  # noqa: NPY002
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.set_rng_state_all(states["cuda"])


class RNGStateCheckpoint(Callback):
    """Save the global generator states in every checkpoint and restore them when training resumes.

    The states are those of the process that writes the checkpoint (global rank zero); under DDP every rank
    resumes from them, as every rank started from the same ``seed_everything`` seed. They are restored at
    ``on_train_start``, after Lightning has built the training loader, so the resumed run draws its next random
    numbers exactly where the interrupted one stopped. Add it to a config's callbacks::

        trainer:
          callbacks:
            - class_path: ugmm_vision.callbacks.RNGStateCheckpoint

    Example:
        >>> callback = RNGStateCheckpoint()
        >>> state = callback.state_dict()
        >>> first = torch.rand(1)
        >>> callback.load_state_dict(state)
        >>> callback.on_train_start(None, None)  # what the Trainer calls when it resumes
        >>> torch.equal(torch.rand(1), first)
        True
    """

    def __init__(self) -> None:
        self._to_restore: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"rng_states": get_rng_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "rng_states" not in state_dict:
            raise ValueError(f"Expected `state_dict` with 'rng_states', got keys {sorted(state_dict)}")
        self._to_restore = state_dict["rng_states"]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._to_restore is not None:
            set_rng_states(self._to_restore)
            self._to_restore = None
