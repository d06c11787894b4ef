"""Shared pieces of the data modules: named evaluation sets (id / ood / shift) and a base for image datasets.

Naming convention of evaluation loaders, across every data module: ``"id"`` for the in-distribution test set,
``"ood"`` or ``"ood/<name>"`` for out-of-distribution sets, ``"shift/<corruption>/<severity>"`` for the
in-distribution test set under a corruption.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import timm.data
import torch
import torchvision.transforms.v2 as v2
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from ugmm_vision.checks import check_int, is_int
from ugmm_vision.data.corruptions import CORRUPTIONS, is_severity
from ugmm_vision.data.ood_sets import check_ood_arguments, offline_ood_sets
from ugmm_vision.data.resumable import ResumableDataLoader, loader_options
from ugmm_vision.data.shift import CorruptedDataset
from ugmm_vision.data.splits import dataset_targets, stratified_split
from ugmm_vision.data.transforms import ToShape, TransformedDataset, adapt_stats

# TransformedDataset and stratified_split live in transforms.py and splits.py; re-exported here, their old home.
__all__ = ["EvaluationSetsMixin", "TransformedDataset", "VisionDataModule", "stratified_split"]


class EvaluationSetsMixin:
    """Adds ``shift_dataloaders()`` to a LightningDataModule that has a normalised in-distribution test set.

    The host class provides ``test_set`` (a dataset of ``(normalised image tensor, label)``, set by ``setup``),
    ``mean`` and ``std`` (scalars or per channel, as used to normalise), ``batch_size`` and ``num_workers``; an
    integer ``seed`` attribute, when present, seeds the corruptions.

    Example:
        >>> from ugmm_vision.data import DigitsDataModule
        >>> dm = DigitsDataModule()
        >>> dm.setup("test")
        >>> list(dm.shift_dataloaders(["contrast", "rotation"], severities=(1, 5)))
        ['shift/contrast/1', 'shift/contrast/5', 'shift/rotation/1', 'shift/rotation/5']
    """

    def shift_dataloaders(
        self,
        corruptions: Sequence[str] | None = None,
        severities: Sequence[int] = (1, 2, 3, 4, 5),
    ) -> dict[str, DataLoader]:
        """Loaders of the test set under each corruption and severity, keyed ``"shift/<corruption>/<severity>"``.

        Args:
            corruptions: names from :data:`~ugmm_vision.data.corruptions.CORRUPTIONS` (None: all of them).
            severities: severities in 1–5.
        """
        names = list(CORRUPTIONS) if corruptions is None else list(corruptions)
        unknown = [n for n in names if n not in CORRUPTIONS]
        if unknown or not names:
            raise ValueError(f"Expected `corruptions` from {list(CORRUPTIONS)}, got {names}")
        severities = list(severities)
        if not severities or not all(map(is_severity, severities)):
            raise ValueError(f"Expected `severities` in 1–5, got {severities}")
        test_set = getattr(self, "test_set", None)
        if test_set is None:
            raise RuntimeError(f"{type(self).__name__} has no test set yet: call setup('test') first")
        seed = getattr(self, "seed", 0)
        return {
            f"shift/{name}/{severity}": self._eval_loader(
                CorruptedDataset(test_set, name, severity, self.mean, self.std, seed=seed)  # type: ignore[attr-defined]
            )
            for name in names
            for severity in severities
        }

    def _eval_loader(self, dataset: Dataset, persistent: bool = False) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,  # type: ignore[attr-defined]
            shuffle=False,
            **loader_options(self, self.num_workers, persistent=persistent),  # type: ignore[attr-defined]
        )


class VisionDataModule(EvaluationSetsMixin, LightningDataModule):
    """Base of the image-file data modules: transforms, seeded split, channel/size conversion, named loaders.

    Subclasses load the raw splits (``_load_split``, PIL images without transforms), the OOD sets
    (``_load_ood``) and name their classes; this class builds the transforms — timm's when
    ``timm_data_config`` is given (``timm.data.create_transform(**config, is_training=...)``), else
    ``ToTensor + Normalize`` with optional light augmentation — and every loader. ``test_dataloader()`` returns
    ``{"id": …, "ood/<name>": …}``; ``shift_dataloaders()`` adds corrupted copies of the test set.

    OOD sets that exist offline, for every subclass (see :mod:`ugmm_vision.data.ood_sets`): ``ood_classes`` hold
    classes out — they leave training, validation and the ``"id"`` test set, the others are relabelled ``0 … K−1``
    in increasing order, and the held-out classes' test images are ``"ood/held_out"``; ``extra_ood`` adds
    ``"ood/digits"`` (scikit-learn's digits resized, not MNIST) and the seeded noise sets ``"ood/gaussian"``,
    ``"ood/uniform"``, ``"ood/constant"`` (as many images as the ``"id"`` test set); ``ood_folders`` adds one
    ``"ood/<folder name>"`` per folder (``ImageFolder`` layout or a flat folder of images).

    Args:
        batch_size: samples per batch for every loader.
        val_fraction: fraction of the training split held out for validation (when no validation split exists).
        seed: seed of the train/validation split and of the shift corruptions.
        num_workers: DataLoader workers.
        image_size: side length images are resized and centre-cropped to (None: the data's own size); ignored
            with ``timm_data_config``, whose ``input_size`` decides.
        num_channels: 1 (grey) or 3 (RGB) channels (None: the data's own, or timm's ``input_size[0]``).
        augment: light training augmentation without timm: random crop with padding (and horizontal flip where
            the data allows it).
        timm_data_config: a timm data config (e.g. ``TimmBackbone.data_config``) to build timm's transforms.
        mean: normalisation mean per channel (None: timm's config, else the dataset's standard value).
        std: normalisation standard deviation per channel (None: as ``mean``).
        ood_classes: labels (in the files' numbering) held out of training and served as ``"ood/held_out"``.
        extra_ood: offline OOD sets to add: ``"digits"``, ``"gaussian"``, ``"uniform"``, ``"constant"``.
        ood_folders: folders of images, each served as ``"ood/<folder name>"``.
    """

    native_channels: int = 3
    native_size: int | None = None
    default_mean: tuple[float, ...] = timm.data.IMAGENET_DEFAULT_MEAN
    default_std: tuple[float, ...] = timm.data.IMAGENET_DEFAULT_STD
    hflip: bool = True

    def __init__(
        self,
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
        ood_classes: Sequence[int] = (),
        extra_ood: Sequence[str] = (),
        ood_folders: Sequence[str] = (),
    ) -> None:
        super().__init__()
        for name, value, low in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0), ("seed", seed, 0)):
            check_int(name, value, low=low)
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"Expected `val_fraction` in (0, 1), got {val_fraction}")
        if image_size is not None and (not is_int(image_size) or image_size < 1):
            raise ValueError(f"Expected `image_size` to be a positive integer or None, got {image_size!r}")
        if timm_data_config is not None:
            timm_data_config = {k: tuple(v) if isinstance(v, list) else v for k, v in timm_data_config.items()}
        if num_channels is None:
            num_channels = timm_data_config["input_size"][0] if timm_data_config else self.native_channels
        if num_channels not in (1, 3):
            raise ValueError(f"Expected `num_channels` in {{1, 3}}, got {num_channels!r}")
        config_stats = timm_data_config or {}
        mean = mean if mean is not None else config_stats.get("mean", self.default_mean)
        std = std if std is not None else config_stats.get("std", self.default_std)
        self.mean, self.std = adapt_stats(mean, num_channels, "mean"), adapt_stats(std, num_channels, "std")
        if min(self.std) <= 0:
            raise ValueError(f"Expected `std` > 0, got {std}")
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.seed = seed
        self.num_workers = num_workers
        self.image_size = image_size
        self.num_channels = num_channels
        self.augment = augment
        self.timm_data_config = timm_data_config
        self.ood_classes, self.extra_ood, self.ood_folders = check_ood_arguments(ood_classes, extra_ood, ood_folders)
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self.ood_sets: dict[str, Dataset] = {}

    # -- hooks for subclasses ---------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Number of in-distribution classes."""
        raise NotImplementedError

    @property
    def class_names(self) -> list[str]:
        """Class names, indexed by label."""
        raise NotImplementedError

    def _load_split(self, split: str) -> Any:
        """The raw ``"train"``, ``"val"`` or ``"test"`` split: a dataset of ``(PIL image, label)``."""
        raise NotImplementedError

    def _has_val_split(self) -> bool:
        return False

    def _load_ood(self) -> dict[str, Any]:
        """Raw OOD test sets keyed by loader name (``"ood"`` or ``"ood/<name>"``)."""
        return {}

    # -- transforms -----------------------------------------------------------------------------------------
    @property
    def target_size(self) -> int | None:
        """Side length every image is brought to before the transform (None with timm, which resizes itself)."""
        return None if self.timm_data_config else (self.image_size or self.native_size)

    def transforms(self) -> tuple[Callable, Callable]:
        """``(train_transform, eval_transform)`` from PIL images in any mode and size to normalised tensors."""
        to_shape = ToShape("L" if self.num_channels == 1 else "RGB", self.target_size)
        if self.timm_data_config:
            config = {**self.timm_data_config, "mean": self.mean, "std": self.std}
            train = timm.data.create_transform(**config, is_training=True)
            evaluate = timm.data.create_transform(**config, is_training=False)
            return v2.Compose([to_shape, train]), v2.Compose([to_shape, evaluate])
        to_tensor = [
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(self.mean, self.std),
            v2.ToPureTensor(),
        ]
        augmentation: list[Callable] = []
        if self.augment and self.target_size:
            augmentation.append(v2.RandomCrop(self.target_size, padding=max(1, self.target_size // 8)))
        if self.augment and self.hflip:
            augmentation.append(v2.RandomHorizontalFlip())
        return v2.Compose([to_shape, *augmentation, *to_tensor]), v2.Compose([to_shape, *to_tensor])

    # -- Lightning hooks ------------------------------------------------------------------------------------
    def _label_map(self, num_labels: int) -> list[int] | None:
        """``label → new label`` (-1 for held-out classes) over the files' ``num_labels`` classes; None: identity."""
        if not self.ood_classes:
            return None
        if max(self.ood_classes) >= num_labels or len(self.ood_classes) > num_labels - 2:
            raise ValueError(
                f"Expected `ood_classes` to be labels in 0–{num_labels - 1} leaving at least 2 classes, "
                f"got {list(self.ood_classes)}"
            )
        kept = [c for c in range(num_labels) if c not in self.ood_classes]
        new = {c: i for i, c in enumerate(kept)}
        return [new.get(c, -1) for c in range(num_labels)]

    def _split_held_out(self, raw: Any) -> tuple[np.ndarray | None, np.ndarray]:
        """``(indices of kept classes or None for all, indices of held-out classes)`` of a raw split."""
        if not self.ood_classes:
            return None, np.zeros(0, dtype=np.int64)
        held = np.isin(dataset_targets(raw), self.ood_classes)
        return np.flatnonzero(~held), np.flatnonzero(held)

    def setup(self, stage: str | None = None) -> None:
        train_tf, eval_tf = self.transforms()
        label_map = self._label_map(self._num_labels()) if self.ood_classes else None
        if stage in (None, "fit", "validate") and self.train_set is None:
            train_raw = self._load_split("train")
            kept, _ = self._split_held_out(train_raw)
            if self._has_val_split():
                val_raw = self._load_split("val")
                self.train_set = TransformedDataset(train_raw, train_tf, kept, label_map)
                self.val_set = TransformedDataset(val_raw, eval_tf, self._split_held_out(val_raw)[0], label_map)
            else:
                targets = dataset_targets(train_raw)
                kept = np.arange(len(targets)) if kept is None else kept
                train_idx, val_idx = stratified_split(targets[kept], self.val_fraction, self.seed)
                self.train_set = TransformedDataset(train_raw, train_tf, kept[train_idx], label_map)
                self.val_set = TransformedDataset(train_raw, eval_tf, kept[val_idx], label_map)
        if stage in (None, "test", "predict") and self.test_set is None:
            test_raw = self._load_split("test")
            kept, held = self._split_held_out(test_raw)
            self.test_set = TransformedDataset(test_raw, eval_tf, kept, label_map)
            raw_ood = self._load_ood()
            if self.ood_classes:
                raw_ood["ood/held_out"] = TransformedDataset(test_raw, lambda image: image, held)  # original labels
            raw_ood.update(self._offline_ood(test_raw))
            self.ood_sets = {key: TransformedDataset(raw, eval_tf) for key, raw in raw_ood.items()}

    def _num_labels(self) -> int:
        """Number of classes in the files, held-out ones included (``num_classes`` + held out)."""
        return self.num_classes + len(self.ood_classes)

    def _offline_ood(self, test_raw: Any) -> dict[str, Any]:
        """The ``extra_ood`` and ``ood_folders`` sets, keyed ``"ood/<name>"``, sized like the ``"id"`` test set."""
        size = self.target_size or self.native_size or (min(test_raw[0][0].size) if self.extra_ood else 1)
        return offline_ood_sets(
            self.extra_ood, self.ood_folders, size, self.num_channels, len(self.test_set), seed=self.seed
        )

    # Each loader sets up its own part if needed: e.g. an evaluation after setup("test") still gets the
    # validation loader for temperature scaling.
    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        return ResumableDataLoader(  # a mid-epoch checkpoint resumes at the next unseen batch
            self.train_set, batch_size=self.batch_size, shuffle=True, **loader_options(self, self.num_workers)
        )

    def val_dataloader(self) -> DataLoader:
        if self.val_set is None:
            self.setup("fit")
        return self._eval_loader(self.val_set, persistent=True)  # used every epoch: keep its workers

    def test_dataloader(self) -> dict[str, DataLoader]:
        if self.test_set is None:
            self.setup("test")
        return {"id": self._eval_loader(self.test_set), **{k: self._eval_loader(v) for k, v in self.ood_sets.items()}}

    def predict_dataloader(self) -> DataLoader:
        if self.test_set is None:
            self.setup("predict")
        return self._eval_loader(self.test_set)
