"""Image transforms shared by the data modules: channel statistics, PIL mode/size conversion, transformed subsets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torchvision.transforms.v2.functional as TF
from torch.utils.data import Dataset

__all__ = ["ToShape", "TransformedDataset", "adapt_stats"]

_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, what PIL's convert("L") uses


def adapt_stats(stats: Sequence[float], channels: int, name: str = "mean") -> tuple[float, ...]:
    """Per-channel statistics for ``channels`` channels: repeat a single value, or grey (luma) from RGB.

    Example:
        >>> adapt_stats((0.5,), 3)
        (0.5, 0.5, 0.5)
        >>> [round(v, 4) for v in adapt_stats((0.2, 0.4, 0.6), 1)]  # 0.299·0.2 + 0.587·0.4 + 0.114·0.6
        [0.363]
    """
    stats = tuple(float(s) for s in stats)
    if len(stats) == channels:
        return stats
    if len(stats) == 1:
        return stats * channels
    if len(stats) == 3 and channels == 1:
        return (sum(w * s for w, s in zip(_LUMA, stats, strict=True)),)
    raise ValueError(f"Expected `{name}` with 1 or {channels} values, got {len(stats)}")


class ToShape:
    """PIL image → the data's mode (``"L"`` or ``"RGB"``) and, if ``size`` is set, resize + centre crop to it.

    Example:
        >>> from PIL import Image
        >>> ToShape("L", 4)(Image.new("RGB", (8, 6))).size
        (4, 4)
    """

    def __init__(self, mode: str, size: int | None) -> None:
        self.mode, self.size = mode, size

    def __call__(self, image: Any) -> Any:
        image = image.convert(self.mode) if image.mode != self.mode else image
        if self.size is not None and image.size != (self.size, self.size):
            image = TF.center_crop(TF.resize(image, self.size), [self.size, self.size])
        return image

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mode={self.mode!r}, size={self.size})"


class TransformedDataset(Dataset):
    """A (subset of a) dataset of ``(PIL image, label)`` with a transform applied to the images.

    One raw dataset serves the training and validation parts of a split with different transforms. ``label_map``
    relabels (``label_map[label]``), e.g. the classes that remain when some are held out as an OOD set.

    Example:
        >>> import torch
        >>> import torchvision.transforms.v2 as v2
        >>> from PIL import Image
        >>> raw = [(Image.new("L", (4, 4), 255), 7), (Image.new("L", (4, 4), 0), 3)]
        >>> ds = TransformedDataset(raw, v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]), [1])
        >>> len(ds), ds[0][0].shape, ds[0][1]
        (1, torch.Size([1, 4, 4]), 3)
    """

    def __init__(
        self,
        dataset: Any,
        transform: Callable,
        indices: Sequence[int] | None = None,
        label_map: Sequence[int] | None = None,
    ) -> None:
        self.dataset = dataset
        self.transform = transform
        self.indices = None if indices is None else [int(i) for i in indices]
        self.label_map = None if label_map is None else [int(v) for v in label_map]

    def __len__(self) -> int:
        return len(self.dataset) if self.indices is None else len(self.indices)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, label = self.dataset[index if self.indices is None else self.indices[index]]
        label = int(label) if self.label_map is None else self.label_map[int(label)]
        return self.transform(image), label
