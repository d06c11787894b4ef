"""Cached backbone features: compute once, train many heads on them (the comparison's frozen-backbone mode)."""

from __future__ import annotations

from typing import Any

import torch
from lightning import LightningDataModule, LightningModule, Trainer
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["FeatureDataModule", "extract_features", "predict_features"]


@torch.no_grad()
def extract_features(backbone: nn.Module, loader: DataLoader, device: torch.device | str = "cpu") -> TensorDataset:
    """Run ``backbone`` in eval mode over ``loader`` and keep (features, labels) as a ``TensorDataset``.

    Example:
        >>> loader = DataLoader(TensorDataset(torch.randn(5, 3), torch.arange(5)), batch_size=2)
        >>> extract_features(nn.Linear(3, 2), loader).tensors[0].shape
        torch.Size([5, 2])
    """
    was_training = backbone.training
    backbone.eval().to(device)
    features, labels = [], []
    for images, targets in loader:
        features.append(backbone(images.to(device)).float().cpu())
        labels.append(targets)
    backbone.train(was_training)
    return TensorDataset(torch.cat(features), torch.cat(labels))


class _FeatureExtractor(LightningModule):
    """``predict_step`` = the backbone's features (float32, on the CPU) and the batch's labels."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> tuple[Tensor, Tensor]:
        images, targets = batch
        return self.backbone(images).float().cpu(), targets.cpu()


def predict_features(trainer: Trainer, backbone: nn.Module, loader: DataLoader) -> TensorDataset:
    """:func:`extract_features` through ``trainer.predict``: on the trainer's accelerator and precision (under
    inference mode, backbone in eval mode), with its progress bar.

    Example:
        >>> loader = DataLoader(TensorDataset(torch.randn(5, 3), torch.arange(5)), batch_size=2)
        >>> trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
        >>> predict_features(trainer, nn.Linear(3, 2), loader).tensors[0].shape
        torch.Size([5, 2])
    """
    # In order, once each: a shuffling (training) loader is read through a sequential one over its dataset.
    sequential = DataLoader(
        loader.dataset,
        batch_size=loader.batch_size or 1,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
    )
    outputs = trainer.predict(_FeatureExtractor(backbone), sequential)
    features, labels = zip(*outputs, strict=True)
    return TensorDataset(torch.cat(features), torch.cat(labels))


class FeatureDataModule(LightningDataModule):
    """Serves cached features with the same named evaluation sets as the image data module they came from.

    Args:
        train_set: (features, labels) of the training split.
        val_set: (features, labels) of the validation split.
        test_sets: named evaluation sets (``"id"``, ``"ood…"``); ``"shift/…"`` sets go in ``shift_sets``.
        shift_sets: named corrupted copies of the test set (``"shift/<corruption>/<severity>"``).
        num_classes: number of classes.
        batch_size: samples per batch.
    """

    def __init__(
        self,
        train_set: TensorDataset,
        val_set: TensorDataset,
        test_sets: dict[str, TensorDataset],
        num_classes: int,
        shift_sets: dict[str, TensorDataset] | None = None,
        batch_size: int = 256,
    ) -> None:
        super().__init__()
        if "id" not in test_sets:
            raise ValueError(f"Expected `test_sets` to contain 'id', got {sorted(test_sets)}")
        self.train_set, self.val_set, self.test_sets = train_set, val_set, dict(test_sets)
        self.shift_sets = dict(shift_sets or {})
        self.test_set = self.test_sets["id"]
        self.num_classes = num_classes
        self.batch_size = batch_size

    def _loader(self, dataset: TensorDataset, shuffle: bool = False) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set)

    def test_dataloader(self) -> dict[str, DataLoader]:
        return {name: self._loader(dataset) for name, dataset in self.test_sets.items()}

    def shift_dataloaders(self, corruptions=None, severities=(1, 2, 3, 4, 5)) -> dict[str, DataLoader]:
        """The cached shift sets (already computed for the corruptions and severities chosen when caching)."""
        return {name: self._loader(dataset) for name, dataset in self.shift_sets.items()}
