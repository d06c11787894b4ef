"""``UnlabelledImageFolderDataModule``: a flat folder of images to predict, for ``ugmm-vision predict``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ugmm_vision.checks import is_int
from ugmm_vision.data.base import VisionDataModule
from ugmm_vision.data.image_files import check_same_size, list_images, to_eight_bit, unreadable_reason

__all__ = ["ImageFileDataset", "UnlabelledImageFolderDataModule", "list_images"]


class ImageFileDataset(Dataset):
    """Images read from ``paths`` and transformed; an item is the image tensor alone (no label).

    Args:
        paths: the image files; ``dataset.paths[i]`` names item ``i`` (the prediction writer reports it).
        transform: PIL image → tensor.
    """

    def __init__(self, paths: Sequence[str | Path], transform: Callable[[Any], Tensor]) -> None:
        self.paths = [Path(p) for p in paths]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tensor:
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                image = to_eight_bit(image)  # 16-bit grey scaled, not clipped to white
                image = image.convert("RGB") if image.mode not in ("L", "RGB") else image.copy()
        except Exception as err:  # PIL's "image file is truncated" names no file
            raise OSError(f"Could not read the image file {path}: {type(err).__name__}: {err}") from err
        return self.transform(image)


class UnlabelledImageFolderDataModule(VisionDataModule):
    """Images in one folder, without labels, served by ``predict_dataloader()`` in file-name order.

    Preprocessing is :class:`~ugmm_vision.data.VisionDataModule`'s evaluation transform, so pass the
    ``image_size``, ``num_channels``, ``mean``/``std`` or ``timm_data_config`` the model was trained with (the
    defaults match :class:`~ugmm_vision.data.ImageFolderDataModule`'s). The model's classes are not in the
    folder: give ``class_names`` (also the names the prediction CSV shows) or ``num_classes``; the CLI links
    ``num_classes`` to the model as for the training data modules. There is nothing to train or test on.

    Args:
        root: the folder of images (``.png``, ``.jpg``, … as torchvision's ``IMG_EXTENSIONS``).
        class_names: the model's class names by index.
        num_classes: the model's number of classes, when ``class_names`` is not given.
        batch_size: images per batch.
        num_workers: DataLoader workers.
        image_size: side length images are resized and centre-cropped to (None: as stored).
        num_channels: 1 or 3 (None: 3, or timm's ``input_size[0]``).
        timm_data_config: a timm data config to build timm's evaluation transform.
        mean: normalisation mean per channel (None: timm's config, else ImageNet's).
        std: normalisation standard deviation per channel.
        recursive: also take images from sub-folders.
        bad_images: unreadable image files (not images, truncated, damaged PNG chunks), found at ``setup`` by
            verifying every file: ``"raise"`` — a ``ValueError`` naming the first one; ``"skip"`` — left out, with
            a warning listing them all (the prediction CSV then has no row for them).

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> for i in range(3):
        ...     Image.new("L", (10, 10), 40 * i).save(root / f"img{i}.png")
        >>> dm = UnlabelledImageFolderDataModule(root, class_names=["cat", "dog"], image_size=8, num_channels=1)
        >>> dm.setup("predict")
        >>> batch = next(iter(dm.predict_dataloader()))
        >>> dm.num_classes, tuple(batch.shape), dm.predict_set.paths[2].name
        (2, (3, 1, 8, 8), 'img2.png')
    """

    def __init__(
        self,
        root: str | Path,
        class_names: list[str] | None = None,
        num_classes: int | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int | None = None,
        num_channels: int | None = None,
        timm_data_config: dict[str, Any] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        recursive: bool = False,
        bad_images: Literal["raise", "skip"] = "raise",
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            num_workers=num_workers,
            image_size=image_size,
            num_channels=num_channels,
            timm_data_config=timm_data_config,
            mean=mean,
            std=std,
        )
        if class_names is not None and (isinstance(class_names, str) or len(class_names) < 2):
            raise ValueError(f"Expected `class_names` to list at least 2 names, got {class_names!r}")
        if num_classes is not None and not is_int(num_classes):
            raise ValueError(f"Expected `num_classes` to be an integer or None, got {num_classes!r}")
        if bad_images not in ("raise", "skip"):
            raise ValueError(f"Expected `bad_images` to be 'raise' or 'skip', got {bad_images!r}")
        if class_names is None and num_classes is None:
            raise ValueError("Expected `class_names` or `num_classes` (the model's classes), got neither")
        if class_names is not None and num_classes is not None and num_classes != len(class_names):
            raise ValueError(f"Expected `num_classes` = len(class_names) = {len(class_names)}, got {num_classes}")
        if (num_classes if class_names is None else len(class_names)) < 2:
            raise ValueError(f"Expected `num_classes` ≥ 2, got {num_classes}")
        self.save_hyperparameters()
        self.root = Path(root)
        self.recursive = recursive
        self.bad_images = bad_images
        self.skipped_images: list[str] = []
        self._class_names = None if class_names is None else [str(name) for name in class_names]
        self._num_classes = len(class_names) if class_names is not None else num_classes
        self.predict_set: ImageFileDataset | None = None

    @property
    def num_classes(self) -> int:
        """The model's number of classes (from ``class_names`` or ``num_classes``)."""
        return self._num_classes

    @property
    def class_names(self) -> list[str]:
        """The model's class names (their indices as text when only ``num_classes`` was given)."""
        return self._class_names or [str(i) for i in range(self._num_classes)]

    def setup(self, stage: str | None = None) -> None:
        if self.predict_set is None:
            paths = list_images(self.root, self.recursive)
            if not paths:
                raise FileNotFoundError(f"Expected image files in root={str(self.root)!r}, found none")
            paths = self._readable(paths)
            if self.target_size is None:  # else collate fails mid-epoch in torch.stack
                check_same_size(paths, where=f"root={str(self.root)!r}")
            self.predict_set = ImageFileDataset(paths, self.transforms()[1])

    def _readable(self, paths: list[Path]) -> list[Path]:
        bad: dict[Path, str] = {}
        for path in paths:
            why = unreadable_reason(path)
            if why is not None and self.bad_images == "raise":
                raise ValueError(
                    f"Expected readable image files in root={str(self.root)!r}, got {path} ({why}); fix or delete "
                    "it, or pass `bad_images`='skip' to leave unreadable files out with a warning"
                )
            if why is not None:
                bad[path] = why
        if bad:
            self.skipped_images = [str(p) for p in bad]
            listing = "; ".join(f"{path} ({why})" for path, why in bad.items())
            warnings.warn(
                f"Skipped {len(bad)} unreadable image file(s) in root={str(self.root)!r} (bad_images='skip'), "
                f"which get no prediction: {listing}",
                UserWarning,
                stacklevel=3,
            )
        kept = [p for p in paths if p not in bad]
        if not kept:
            raise ValueError(f"Expected at least one readable image file in root={str(self.root)!r}, got none")
        return kept

    def predict_dataloader(self) -> DataLoader:
        if self.predict_set is None:
            self.setup("predict")
        return self._eval_loader(self.predict_set)

    def _unsupported(self) -> DataLoader:
        raise RuntimeError(f"{type(self).__name__} holds unlabelled images: use it with `predict` only")

    train_dataloader = val_dataloader = test_dataloader = _unsupported
