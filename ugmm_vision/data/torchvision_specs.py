"""The table of torchvision datasets the data modules load: classes, split keyword, statistics and OOD partners.

:data:`TORCHVISION_SETS` holds one :class:`TorchvisionSet` per dataset, read by
:class:`~ugmm_vision.data.torchvision_sets.TorchvisionDataModule`; :data:`SYSTEM_DATASET_DIRS` names where a system
package installs a dataset's files.

Example:
    >>> spec = TORCHVISION_SETS["cifar10"]
    >>> spec.num_classes, spec.channels, spec.size, spec.ood_partner
    (10, 3, 32, 'svhn')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from torchvision.datasets import CIFAR10, CIFAR100, MNIST, SVHN, FashionMNIST

from ugmm_vision.data.cifar_files import SafeCIFAR10, SafeCIFAR100

__all__ = ["SYSTEM_DATASET_DIRS", "TORCHVISION_SETS", "TorchvisionSet"]


class _UncheckedCIFAR10(SafeCIFAR10):
    """CIFAR10 that checks that its files exist but not their md5 (``verify_checksums=False``)."""

    train_list: ClassVar[list] = [[name, None] for name, _ in CIFAR10.train_list]
    test_list: ClassVar[list] = [[name, None] for name, _ in CIFAR10.test_list]
    meta: ClassVar[dict] = {**CIFAR10.meta, "md5": None}


class _UncheckedCIFAR100(SafeCIFAR100):
    """CIFAR100 that checks that its files exist but not their md5 (``verify_checksums=False``)."""

    train_list: ClassVar[list] = [[name, None] for name, _ in CIFAR100.train_list]
    test_list: ClassVar[list] = [[name, None] for name, _ in CIFAR100.test_list]
    meta: ClassVar[dict] = {**CIFAR100.meta, "md5": None}


class _UncheckedSVHN(SVHN):
    """SVHN that checks that its files exist but not their md5 (``verify_checksums=False``)."""

    split_list: ClassVar[dict] = {split: [url, name, None] for split, (url, name, _) in SVHN.split_list.items()}


@dataclass(frozen=True)
class TorchvisionSet:
    """How to load one torchvision dataset and what it looks like."""

    dataset_class: type
    unchecked_class: type  # same files, md5 not verified
    split_keyword: str  # "train" (train=True/False) or "split" (split="train"/"test")
    num_classes: int
    channels: int
    size: int
    mean: tuple[float, ...]  # standard per-channel statistics of the training split
    std: tuple[float, ...]
    ood_partner: str
    hflip: bool  # whether a horizontal flip keeps the label (not for digits)
    idx_folder: str | None = None  # the MNIST family: torchvision's folder name, read by ugmm_vision.data.idx_files


TORCHVISION_SETS: dict[str, TorchvisionSet] = {
    "mnist": TorchvisionSet(
        dataset_class=MNIST, unchecked_class=MNIST, split_keyword="train", num_classes=10, channels=1, size=28,
        mean=(0.1307,), std=(0.3081,), ood_partner="fashion_mnist", hflip=False, idx_folder="MNIST",
    ),
    "fashion_mnist": TorchvisionSet(
        dataset_class=FashionMNIST, unchecked_class=FashionMNIST, split_keyword="train", num_classes=10, channels=1,
        size=28, mean=(0.2860,), std=(0.3530,), ood_partner="digits", hflip=True, idx_folder="FashionMNIST",
    ),
    "cifar10": TorchvisionSet(
        dataset_class=SafeCIFAR10, unchecked_class=_UncheckedCIFAR10, split_keyword="train", num_classes=10, channels=3,
        size=32, mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), ood_partner="svhn", hflip=True,
    ),
    "cifar100": TorchvisionSet(
        dataset_class=SafeCIFAR100, unchecked_class=_UncheckedCIFAR100, split_keyword="train", num_classes=100,
        channels=3, size=32, mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762), ood_partner="svhn",
        hflip=True,
    ),
    "svhn": TorchvisionSet(
        dataset_class=SVHN, unchecked_class=_UncheckedSVHN, split_keyword="split", num_classes=10, channels=3,
        size=32, mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970), ood_partner="cifar10", hflip=False,
    ),
}  # fmt: skip
"""Every supported torchvision dataset by name (with :data:`~ugmm_vision.data.ood_sets.OFFLINE_OOD_SETS`, the
names ``ood_dataset`` accepts)."""

SYSTEM_DATASET_DIRS: dict[str, tuple[Path, str]] = {
    "fashion_mnist": (
        Path("/usr/share/datasets/fashion-mnist"),
        "apt-get update && apt-get install -y dataset-fashion-mnist",
    ),
}
"""Where a system package installs a dataset's files, and the command that installs it."""
