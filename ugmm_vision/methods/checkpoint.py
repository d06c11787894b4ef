"""Loading a member's weights from a Lightning checkpoint, with the checks of :mod:`ugmm_vision.models.checkpoints`."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ugmm_vision.models.checkpoints import check_state_dict_fits, read_checkpoint

__all__ = ["load_weights"]


def load_weights(model: nn.Module, path: str | Path, *, argument: str = "ckpt_path") -> nn.Module:
    """Load the ``state_dict`` of the Lightning checkpoint at ``path`` into ``model`` (``weights_only`` load).

    Raises:
        FileNotFoundError / ValueError: naming ``argument`` and the file, when it is missing, unreadable, not a
            Lightning checkpoint, or a checkpoint of another model.
    """
    checkpoint = read_checkpoint(
        path, lambda: torch.load(path, map_location="cpu", weights_only=True), argument=argument
    )
    check_state_dict_fits(model, checkpoint["state_dict"], path, argument=argument)
    model.load_state_dict(checkpoint["state_dict"])
    return model
