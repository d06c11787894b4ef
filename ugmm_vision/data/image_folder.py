"""``ImageFolderDataModule``: your own images in ``train/``, ``val/``, ``test/`` and ``ood/`` class folders."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import find_classes

from ugmm_vision.data.base import VisionDataModule
from ugmm_vision.data.image_files import check_same_size, load_image, unreadable_reason

__all__ = ["BadImages", "ImageFolderDataModule", "load_image"]

BadImages = Literal["raise", "skip", "unchecked"]


class ImageFolderDataModule(VisionDataModule):
    """Images in torchvision ``ImageFolder`` layout: ``<root>/<split>/<class name>/<image file>``.

    ``train/`` and ``test/`` are required and must hold the same class folders; ``val/`` is optional (else
    ``val_fraction`` of ``train/`` is split off, seeded and stratified); an optional ``ood/`` folder (images in at
    least one sub-folder, whose names are not classes of the model) becomes the ``"ood"`` evaluation set. Images
    are loaded as RGB (or grey with ``num_channels=1``) and normalised with ImageNet's statistics unless a timm
    config or ``mean``/``std`` say otherwise. Without a timm config, set ``image_size`` unless all images share
    one size.

    Unreadable image files (not images, truncated, or with damaged PNG chunks) are found at ``setup``, before any
    training, by opening and verifying every file (``PIL.Image.verify``: headers and checksums, without decoding
    the pixels). By default they are an error that counts and names them; ``bad_images="skip"`` leaves them out
    with a warning giving the count. A file that passes the check but fails to decode later (a JPEG truncated
    inside its pixel data) raises an ``OSError`` naming the file when loaded.

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
        bad_images: unreadable image files found at ``setup``: ``"raise"`` — a ``ValueError`` naming them;
            ``"skip"`` — left out, with a warning giving their count; ``"unchecked"`` — no check (fastest on huge
            folders; a bad file then fails when its batch is loaded).
        ood_classes: labels (indices of the sorted class folders) held out of training, validation and ``"id"``;
            their ``test/`` images are ``"ood/held_out"``.
        extra_ood: offline OOD sets: ``"digits"``, ``"gaussian"``, ``"uniform"``, ``"constant"``
            (:mod:`ugmm_vision.data.ood_sets`).
        ood_folders: more folders of images (``ImageFolder`` layout or flat), each ``"ood/<folder name>"``.

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
        bad_images: BadImages = "raise",
        ood_classes: Sequence[int] = (),
        extra_ood: Sequence[str] = (),
        ood_folders: Sequence[str] = (),
    ) -> None:
        if bad_images not in ("raise", "skip", "unchecked"):
            raise ValueError(f"Expected `bad_images` to be 'raise', 'skip' or 'unchecked', got {bad_images!r}")
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
            ood_classes=ood_classes,
            extra_ood=extra_ood,
            ood_folders=ood_folders,
        )
        self.save_hyperparameters()
        self.root = Path(root)
        self.bad_images = bad_images
        self.skipped_images: dict[str, int] = {}

    def _folder(self, split: str) -> Path:
        if not self.root.is_dir():
            raise FileNotFoundError(f"Expected `root` to be a folder holding train/ and test/, got {str(self.root)!r}")
        folder = self.root / split
        if not folder.is_dir():
            raise FileNotFoundError(f"Expected a `{split}/` folder of class sub-folders under root={self.root}")
        return folder

    @property
    def class_names(self) -> list[str]:
        """The sub-folder names of ``train/``, sorted, less the held-out ones; label ``i`` is ``class_names[i]``."""
        return [name for i, name in enumerate(self._folder_names()) if i not in self.ood_classes]

    def _num_labels(self) -> int:
        return len(self._folder_names())

    def _folder_names(self) -> list[str]:
        folder = self._folder("train")
        try:
            return find_classes(folder)[0]
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"Expected class sub-folders in `train/` under root={self.root}, found none (the folder is empty)"
            ) from err

    @property
    def num_classes(self) -> int:
        """Number of class folders in ``train/``."""
        return len(self.class_names)

    def _has_val_split(self) -> bool:
        return (self.root / "val").is_dir()

    def _image_folder(self, folder: Path, split: str) -> ImageFolder:
        try:
            dataset = ImageFolder(folder, loader=load_image)
        except FileNotFoundError as err:
            if "class folder" in str(err):  # torchvision: "Couldn't find any class folder in …"
                raise FileNotFoundError(
                    f"Expected class sub-folders in `{split}/` under root={self.root}, found none (the folder is empty)"
                ) from err
            raise FileNotFoundError(
                f"Expected image files in every class folder of `{split}/` under root={self.root}: {err}"
            ) from err
        if self.bad_images != "unchecked":
            self._drop_unreadable(dataset, split)
            if self.target_size is None and dataset.samples:  # else collate fails mid-epoch in torch.stack
                check_same_size([path for path, _ in dataset.samples], where=f"`{split}/` under root={self.root}")
        return dataset

    def _drop_unreadable(self, dataset: ImageFolder, split: str) -> None:
        bad = {path: why for path, _ in dataset.samples if (why := unreadable_reason(path)) is not None}
        if not bad:
            return
        examples = "; ".join(f"{path} ({why})" for path, why in list(bad.items())[:3])
        if self.bad_images == "raise":
            raise ValueError(
                f"Expected readable image files in `{split}/` under root={self.root}, got {len(bad)} unreadable "
                f"file(s), e.g. {examples}; fix or delete them, or pass `bad_images`='skip' to leave them out"
            )
        dataset.samples = [(path, label) for path, label in dataset.samples if path not in bad]
        dataset.imgs = dataset.samples
        dataset.targets = [label for _, label in dataset.samples]
        self.skipped_images[split] = len(bad)
        warnings.warn(
            f"Skipped {len(bad)} unreadable image file(s) in `{split}/` under root={self.root} "
            f"(bad_images='skip'), which are left out of the set: "
            + "; ".join(f"{path} ({why})" for path, why in bad.items()),  # every one: never a silently shorter set
            UserWarning,
            stacklevel=2,
        )

    def _load_split(self, split: str) -> ImageFolder:
        dataset = self._image_folder(self._folder(split), split)
        if split != "train" and dataset.classes != self._folder_names():
            raise ValueError(
                f"Expected the class folders of `{split}/` to be those of `train/` {self._folder_names()}, "
                f"got {dataset.classes}"
            )
        return dataset

    def _load_ood(self) -> dict[str, Any]:
        return {"ood": self._image_folder(self.root / "ood", "ood")} if (self.root / "ood").is_dir() else {}
