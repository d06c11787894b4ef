"""Random classification cases (logits and targets) that the calibration and plot tests share."""

from __future__ import annotations

import torch


def random_logits(
    n: int, c: int, seed: int, scale: float, targets_from_logits: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``scale``-times standard-normal logits of shape (n, c) and targets drawn uniformly, or, with
    ``targets_from_logits``, sampled from the softmax of 0.8 × the logits (a model that is roughly calibrated)."""
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, c, generator=g)
    if targets_from_logits:
        target = torch.multinomial((0.8 * logits).softmax(-1), 1, generator=g).squeeze(1)  # (N, 1) -> (N,)
    else:
        target = torch.randint(0, c, (n,), generator=g)
    return logits, target
