"""``ImageFolderDataModule``: your own images in ``train/``, ``val/``, ``test/`` and ``ood/`` class folders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import find_classes

from ugmm_vision.data.base import VisionDataModule

__all__ = ["ImageFolderDataModule"]


class ImageFolderDataModule(VisionDataModule):
    """Images in torchvision ``ImageFolder`` layout: ``<root>/<split>/<class name>/<image file>``.

    ``train/`` and ``test/`` are required and must hold the same class folders; ``val/`` is optional (else
    ``val_fraction`` of ``train/`` is split off, seeded and stratified); an optional ``ood/`` folder (images in at
    least one sub-folder, whose names are not classes of the model) becomes the ``"ood"`` evaluation set. Images
    are loaded as RGB (or grey with ``num_channels=1``) and normalised with ImageNet's statistics unless a timm
    config or ``mean``/``std`` say otherwise. Without a timm config, set ``image_size`` unless all images share
    one size.

    Args:
        root: the folder holding ``train/``, ``test/`` and optionally ``val/`` and ``ood/``.
        batch_size: samples per batch for every loader.
        val_fraction: fraction of ``train/`` held out for validation when there is no ``val/``.
        seed: seed of the train/validation split and of the shift corruptions.
        num_workers: DataLoader workers.
        image_size: side length images are resized and centre-cropped to (None: as stored); ignored with timm.
        num_channels: 1 or 3 (None: 3, or timm's ``input_size[0]``).
        augment: light training augmentation without timm (padded random crop, horizontal flip).
        timm_data_config: a timm data config (e.g. ``TimmBackbone.data_config``) to build timm's transforms.
        mean: normalisation mean per channel (None: timm's config, else ImageNet's).
        std: normalisation standard deviation per channel (None: as ``mean``).

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> root = Path(tempfile.mkdtemp())
        >>> for split in ("train", "test"):
        ...     for name in ("cat", "dog"):
        ...         (root / split / name).mkdir(parents=True)
        ...         for i in range(4):
        ...             Image.new("RGB", (12, 12), (60 * i, 0, 0)).save(root / split / name / f"{i}.png")
        >>> dm = ImageFolderDataModule(root, image_size=8, val_fraction=0.25)
        >>> dm.setup("fit")
        >>> dm.class_names, len(dm.train_set), len(dm.val_set), tuple(dm.train_set[0][0].shape)
        (['cat', 'dog'], 6, 2, (3, 8, 8))
    """

    def __init__(
        self,
        root: str | Path,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        seed: int = 0,
        num_workers: int = 0,
        image_size: int | None = None,
        num_channels: int | None = None,
        augment: bool = False,
        timm_data_config: dict[str, Any] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            val_fraction=val_fraction,
            seed=seed,
            num_workers=num_workers,
            image_size=image_size,
            num_channels=num_channels,
            augment=augment,
            timm_data_config=timm_data_config,
            mean=mean,
            std=std,
        )
        self.save_hyperparameters()
        self.root = Path(root)

    def _folder(self, split: str) -> Path:
        folder = self.root / split
        if not folder.is_dir():
            raise FileNotFoundError(f"Expected a `{split}/` folder of class sub-folders under root={self.root}")
        return folder

    @property
    def class_names(self) -> list[str]:
        """The sub-folder names of ``train/``, sorted; label ``i`` is ``class_names[i]``."""
        return find_classes(self._folder("train"))[0]

    @property
    def num_classes(self) -> int:
        """Number of class folders in ``train/``."""
        return len(self.class_names)

    def _has_val_split(self) -> bool:
        return (self.root / "val").is_dir()

    def _load_split(self, split: str) -> ImageFolder:
        dataset = ImageFolder(self._folder(split))
        if split != "train" and dataset.classes != self.class_names:
            raise ValueError(
                f"Expected the class folders of `{split}/` to be those of `train/` {self.class_names}, "
                f"got {dataset.classes}"
            )
        return dataset

    def _load_ood(self) -> dict[str, Any]:
        return {"ood": ImageFolder(self.root / "ood")} if (self.root / "ood").is_dir() else {}
