"""``CorruptedDataset``: a distribution-shifted view of any dataset of normalised images, built on the fly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ugmm_vision.checks import check_non_negative_int
from ugmm_vision.data.corruptions import CORRUPTIONS, check_severity, corrupt

__all__ = ["CorruptedDataset", "channel_stats"]


def channel_stats(value: float | Sequence[float] | Tensor, name: str) -> Tensor:
    """A mean or std given as a scalar or per channel, as a tensor broadcasting over (C, H, W).

    Args:
        value: one number for every channel, or one per channel.
        name: the argument's name, for error messages.

    Returns:
        Shape () for a scalar, (C, 1, 1) per channel.

    Example:
        >>> channel_stats((0.5, 0.4, 0.3), "mean").shape
        torch.Size([3, 1, 1])
        >>> channel_stats(0.5, "mean").shape
        torch.Size([])
    """
    stats = torch.as_tensor(value, dtype=torch.float32).flatten()  # (C,)
    if stats.numel() == 0 or not torch.isfinite(stats).all():
        raise ValueError(f"Expected `{name}` to be a finite number or sequence of numbers, got {value!r}")
    return stats.reshape(()) if stats.numel() == 1 else stats.reshape(-1, 1, 1)  # () or (C, 1, 1)


class CorruptedDataset(Dataset):
    """Wraps a dataset of normalised images: de-normalise → clamp to [0, 1] → corrupt → re-normalise.

    Item ``i`` draws its randomness from a generator seeded by ``(seed, i)`` only, so the shifted set is the same
    on every pass, in every worker and under any batching, and the random draws (noise, rotation direction) are
    shared across severities — severities differ only by their parameter. See
    :mod:`ugmm_vision.data.corruptions` for the corruptions and their severity table.

    Args:
        dataset: any map-style dataset whose items are ``(image, label, ...)`` with ``image`` a (C, H, W) float
            tensor normalised as ``(x − mean) / std``.
        corruption: a key of :data:`~ugmm_vision.data.corruptions.CORRUPTIONS`.
        severity: 1 (mild) to 5 (severe).
        mean: normalisation mean, a scalar or one value per channel.
        std: normalisation standard deviation, a scalar or one value per channel.
        seed: base seed of the per-item generators (non-negative).

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> clean = TensorDataset(torch.zeros(4, 1, 8, 8), torch.arange(4))
        >>> shifted = CorruptedDataset(clean, "gaussian_noise", 5, mean=0.5, std=0.25)
        >>> image, label = shifted[2]
        >>> image.shape, int(label), torch.equal(image, shifted[2][0])
        (torch.Size([1, 8, 8]), 2, True)
    """

    def __init__(
        self,
        dataset: Dataset,
        corruption: str,
        severity: int,
        mean: float | Sequence[float],
        std: float | Sequence[float],
        seed: int = 0,
    ) -> None:
        if corruption not in CORRUPTIONS:
            raise ValueError(f"Expected `corruption` to be one of {list(CORRUPTIONS)}, got {corruption!r}")
        check_severity(severity)
        check_non_negative_int("seed", seed)
        self.mean = channel_stats(mean, "mean")
        self.std = channel_stats(std, "std")
        if (self.std <= 0).any():
            raise ValueError(f"Expected `std` > 0, got {std!r}")
        if self.mean.dim() and self.std.dim() and self.mean.shape != self.std.shape:
            raise ValueError(f"Expected `mean` and `std` with as many channels, got {mean!r} and {std!r}")
        self.dataset = dataset
        self.corruption = corruption
        self.severity = severity
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def item_generator(self, index: int) -> torch.Generator:
        """The generator of item ``index``: seeded by ``(seed, index)`` through NumPy's ``SeedSequence``."""
        state = np.random.SeedSequence([self.seed, index]).generate_state(1, dtype=np.uint64)[0]
        return torch.Generator().manual_seed(int(state))

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        image, *rest = self.dataset[index]
        if not isinstance(image, Tensor) or image.dim() != 3:
            raise ValueError(
                f"Expected the dataset's images to be (C, H, W) tensors, got {getattr(image, 'shape', image)}"
            )
        channels = image.shape[0]
        for name, stats in (("mean", self.mean), ("std", self.std)):
            if stats.dim() and stats.shape[0] != channels:
                raise ValueError(f"Expected `{name}` with {channels} channel values, got {stats.shape[0]}")
        mean, std = self.mean.to(image), self.std.to(image)
        pixels = (image * std + mean).clamp(0.0, 1.0)  # (C, H, W) in [0, 1]
        shifted = corrupt(pixels, self.corruption, self.severity, generator=self.item_generator(index))
        return ((shifted - mean) / std, *rest)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.corruption!r}, severity={self.severity}, n={len(self)})"
