"""``DigitsDataModule``: scikit-learn's embedded 8×8 handwritten digits, the offline default dataset."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from lightning import LightningDataModule
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ugmm_vision.checks import check_positive_int
from ugmm_vision.data.base import EvaluationSetsMixin
from ugmm_vision.data.ood_sets import check_ood_arguments, offline_ood_sets
from ugmm_vision.data.resumable import ResumableDataLoader, loader_options
from ugmm_vision.data.transforms import ToShape

__all__ = ["DigitsDataModule"]

_NUM_DIGITS = 10
_MAX_PIXEL = 16.0  # scikit-learn's digits are 4-bit grey levels


class DigitsDataModule(EvaluationSetsMixin, LightningDataModule):
    """The 1,797 real 8×8 digits shipped inside scikit-learn, split deterministically and stratified.

    Pixels (0–16) are scaled to [0, 1] — the range the shift corruptions work in — and then standardised with the
    training split's mean and standard deviation. Classes listed in
    ``ood_classes`` are removed from every split, the remaining classes are relabelled ``0 … K−1`` in increasing
    order, and all images of the held-out classes form the named ``"ood"`` evaluation set.

    Evaluation sets are named, never indexed: ``test_dataloader()`` returns ``{"id": …}`` plus ``"ood"`` when
    classes are held out, plus ``"ood/<name>"`` for each offline set of ``extra_ood`` and ``ood_folders`` (made at
    8×8 grey like the digits, then prepared like them; see :mod:`ugmm_vision.data.ood_sets`);
    ``shift_dataloaders()`` (from :class:`EvaluationSetsMixin`) serves the test set under corruptions as
    ``"shift/<corruption>/<severity>"``.

    Args:
        batch_size: samples per batch for every loader.
        val_fraction: fraction of the in-distribution images used for validation.
        test_fraction: fraction of the in-distribution images used for testing.
        seed: seed of the stratified split (the split depends on nothing else).
        image_size: side length after bilinear resizing (8 keeps the original; timm models want ≥ 32).
        num_channels: channels of each image (the grey image is repeated; 3 for RGB backbones).
        ood_classes: digits held out of training and served as the out-of-distribution set.
        num_workers: DataLoader workers (0 is fastest for this in-memory dataset).
        extra_ood: offline OOD sets: ``"gaussian"``, ``"uniform"``, ``"constant"`` (as many images as the test set).
        ood_folders: folders of images (``ImageFolder`` layout or flat), each ``"ood/<folder name>"``.

    Example:
        >>> dm = DigitsDataModule(ood_classes=(8, 9))
        >>> dm.setup("fit")
        >>> dm.num_classes, tuple(dm.train_set[0][0].shape)
        (8, (1, 8, 8))
    """

    def __init__(
        self,
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.2,
        seed: int = 0,
        image_size: int = 8,
        num_channels: int = 1,
        ood_classes: Sequence[int] = (),
        num_workers: int = 0,
        extra_ood: Sequence[str] = (),
        ood_folders: Sequence[str] = (),
    ) -> None:
        super().__init__()
        for name, value in (
            ("batch_size", batch_size),
            ("image_size", image_size),
            ("num_channels", num_channels),
        ):
            check_positive_int(name, value)
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"Expected `{name}` in (0, 1), got {value}")
        if val_fraction + test_fraction >= 1.0:
            raise ValueError(f"Expected `val_fraction` + `test_fraction` < 1, got {val_fraction} + {test_fraction}")
        ood_classes = tuple(sorted(set(ood_classes)))
        if any(not 0 <= c < _NUM_DIGITS for c in ood_classes) or len(ood_classes) > _NUM_DIGITS - 2:
            raise ValueError(f"Expected `ood_classes` to be at most 8 distinct digits in 0–9, got {list(ood_classes)}")
        _, extra_ood, ood_folders = check_ood_arguments((), extra_ood, ood_folders)
        if "digits" in extra_ood:
            raise ValueError("Expected `extra_ood` without 'digits' for DigitsDataModule: they are its own data")
        self.save_hyperparameters()
        self.extra_ood, self.ood_folders = extra_ood, ood_folders
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.image_size = image_size
        self.num_channels = num_channels
        self.ood_classes = ood_classes
        self.num_workers = num_workers
        self.id_classes = tuple(c for c in range(_NUM_DIGITS) if c not in ood_classes)
        self.train_set: TensorDataset | None = None

    @property
    def num_classes(self) -> int:
        """Number of in-distribution classes K."""
        return len(self.id_classes)

    @property
    def class_names(self) -> list[str]:
        """Digit names of the in-distribution classes, indexed by label."""
        return [str(c) for c in self.id_classes]

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        digits = load_digits()
        images = torch.as_tensor(digits.images, dtype=torch.float32) / _MAX_PIXEL  # (N, 8, 8) in [0, 1]
        labels = torch.as_tensor(digits.target, dtype=torch.long)  # (N,)
        is_ood = torch.isin(labels, torch.tensor(self.ood_classes, dtype=torch.long))
        id_images, id_labels = images[~is_ood], labels[~is_ood]
        relabel = torch.full((_NUM_DIGITS,), -1, dtype=torch.long)
        relabel[list(self.id_classes)] = torch.arange(self.num_classes)
        id_labels = relabel[id_labels]

        indices = torch.arange(len(id_labels)).numpy()
        train_val, test = train_test_split(
            indices, test_size=self.test_fraction, stratify=id_labels.numpy(), random_state=self.seed
        )
        train, val = train_test_split(
            train_val,
            test_size=self.val_fraction / (1.0 - self.test_fraction),
            stratify=id_labels.numpy()[train_val],
            random_state=self.seed,
        )
        train_images = id_images[train]
        self.mean, self.std = train_images.mean().item(), train_images.std().item()
        self.train_set = TensorDataset(self._prepare(train_images), id_labels[train])
        self.val_set = TensorDataset(self._prepare(id_images[val]), id_labels[val])
        self.test_set = TensorDataset(self._prepare(id_images[test]), id_labels[test])
        # OOD labels are the original digits: they are not classes of the model and are never scored as such.
        self.ood_set = TensorDataset(self._prepare(images[is_ood]), labels[is_ood])
        offline = offline_ood_sets(self.extra_ood, self.ood_folders, 8, 1, len(test), seed=self.seed)
        self.offline_ood_sets = {name: self._from_pil(raw) for name, raw in offline.items()}

    def _from_pil(self, raw: Dataset) -> TensorDataset:
        """An offline OOD set of PIL images → 8×8 grey in [0, 1] → prepared like the digits, labels -1."""
        to_shape = ToShape("L", 8)
        pixels = [np.asarray(to_shape(raw[i][0]), dtype=np.float32) / 255 for i in range(len(raw))]
        images = torch.as_tensor(np.stack(pixels))  # (N, 8, 8)
        return TensorDataset(self._prepare(images), torch.full((len(raw),), -1, dtype=torch.long))

    def _prepare(self, images: Tensor) -> Tensor:
        x = ((images - self.mean) / self.std).unsqueeze(1)  # (N, 1, 8, 8)
        if self.image_size != x.shape[-1]:
            x = F.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False)  # (N, 1, S, S)
        return x.expand(-1, self.num_channels, -1, -1).contiguous()  # (N, C, S, S)

    def _loader(self, dataset: TensorDataset, shuffle: bool = False, persistent: bool = False) -> DataLoader:
        options = loader_options(self, self.num_workers, persistent=persistent)  # pin_memory on CUDA
        if shuffle:  # the training loader: a mid-epoch checkpoint resumes at the next unseen batch
            return ResumableDataLoader(dataset, batch_size=self.batch_size, shuffle=True, **options)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, **options)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, persistent=True)  # used every epoch: keep its workers

    def test_dataloader(self) -> dict[str, DataLoader]:
        loaders = {"id": self._loader(self.test_set)}
        if self.ood_classes:
            loaders["ood"] = self._loader(self.ood_set)
        loaders.update({name: self._loader(dataset) for name, dataset in self.offline_ood_sets.items()})
        return loaders

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set)
