"""LightningDataModules; evaluation sets are named (``"id"``, ``"ood"``, …), never indexed."""

from ugmm_vision.data.base import EvaluationSetsMixin, VisionDataModule
from ugmm_vision.data.corruptions import CORRUPTIONS, corrupt
from ugmm_vision.data.digits import DigitsDataModule
from ugmm_vision.data.idx_files import IdxFileError, IdxImageDataset, read_idx
from ugmm_vision.data.image_folder import ImageFolderDataModule
from ugmm_vision.data.ood_sets import OFFLINE_OOD_SETS, NoiseImages, ResizedDigits, image_folder_ood
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
    "OFFLINE_OOD_SETS",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "CorruptedDataset",
    "DigitsDataModule",
    "EvaluationSetsMixin",
    "FashionMNISTDataModule",
    "IdxFileError",
    "IdxImageDataset",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "NoiseImages",
    "ResizedDigits",
    "ResumableDataLoader",
    "SVHNDataModule",
    "TorchvisionDataModule",
    "UnlabelledImageFolderDataModule",
    "VisionDataModule",
    "corrupt",
    "image_folder_ood",
    "read_idx",
]
