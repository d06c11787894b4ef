"""Seeded train/validation splits of image datasets, by their labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

__all__ = ["dataset_targets", "stratified_split"]


def stratified_split(targets: Sequence[int] | np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """Seeded train/validation split of indices, stratified by class when every class can be split.

    Falls back to a seeded random split when a class has fewer than 2 samples or the validation part cannot hold
    one sample per class (only on tiny data).

    Returns:
        ``(train_indices, val_indices)``, each sorted.

    Example:
        >>> train, val = stratified_split([0, 0, 0, 0, 1, 1, 1, 1], val_fraction=0.5, seed=0)
        >>> len(train), len(val), sorted(np.asarray([0, 0, 0, 0, 1, 1, 1, 1])[val].tolist())
        (4, 4, [0, 0, 1, 1])
    """
    targets = np.asarray(targets)
    counts = np.unique(targets, return_counts=True)[1]
    n_val = int(np.ceil(val_fraction * len(targets)))
    stratify = counts.min() >= 2 and len(counts) <= n_val <= len(targets) - len(counts)
    train, val = train_test_split(
        np.arange(len(targets)), test_size=n_val, stratify=targets if stratify else None, random_state=seed
    )
    return np.sort(train), np.sort(val)


def dataset_targets(dataset: Any) -> np.ndarray:
    """Labels of a torchvision dataset without loading images (``targets``, or SVHN's ``labels``).

    Example:
        >>> from types import SimpleNamespace
        >>> dataset_targets(SimpleNamespace(labels=[3, 1])).tolist()
        [3, 1]
    """
    targets = getattr(dataset, "targets", None)
    if targets is None:
        targets = dataset.labels
    return np.asarray(targets)
