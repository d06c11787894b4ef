"""LightningDataModules; evaluation sets are named (``"id"``, ``"ood"``, …), never indexed."""

from ugmm_vision.data.base import EvaluationSetsMixin, VisionDataModule
from ugmm_vision.data.corruptions import CORRUPTIONS, corrupt
from ugmm_vision.data.digits import DigitsDataModule
from ugmm_vision.data.image_folder import ImageFolderDataModule
from ugmm_vision.data.resumable import ResumableDataLoader
from ugmm_vision.data.shift import CorruptedDataset
from ugmm_vision.data.torchvision_sets import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
    SVHNDataModule,
    TorchvisionDataModule,
)
from ugmm_vision.data.unlabelled import UnlabelledImageFolderDataModule

__all__ = [
    "CORRUPTIONS",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "CorruptedDataset",
    "DigitsDataModule",
    "EvaluationSetsMixin",
    "FashionMNISTDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "ResumableDataLoader",
    "SVHNDataModule",
    "TorchvisionDataModule",
    "UnlabelledImageFolderDataModule",
    "VisionDataModule",
    "corrupt",
]
