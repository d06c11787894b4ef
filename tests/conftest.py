"""The small model, quiet trainer, loader and working folder that tests across the suite share (fast on 2 CPUs).

Test modules do not import this file (``--import-mode=importlib``): they ask for the fixtures ``make_model``,
``make_trainer``, ``make_loader`` and ``in_tmp``.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ugmm_vision.backbones import SmallCNN
from ugmm_vision.heads import UGMMHead
from ugmm_vision.models import ImageClassifier
from ugmm_vision.trainers import quiet_trainer


def tiny_model(**kwargs) -> ImageClassifier:
    """A small CNN (widths 8, 16) with a uGMM head for 8×8 grey digits, 8 classes; ``kwargs`` override."""
    defaults = dict(backbone=SmallCNN(in_chans=1, widths=(8, 16)), head=UGMMHead, num_classes=8)
    return ImageClassifier(**{**defaults, **kwargs})


def cpu_trainer(**kwargs) -> L.Trainer:
    """:func:`~ugmm_vision.trainers.quiet_trainer` on one CPU; ``kwargs`` override."""
    return quiet_trainer(**{"accelerator": "cpu", "devices": 1, **kwargs})


def image_loader(images: torch.Tensor, num_classes: int = 8, batch_size: int = 4) -> DataLoader:
    """A loader of ``(images, labels)`` batches, labels cycling through the classes."""
    labels = torch.arange(len(images)) % num_classes
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run the test inside its temporary folder (the CLI configs write to ./outputs)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def make_model():
    """:func:`tiny_model`: ``make_model(head=LinearHead)``, ``make_model(num_classes=2)``, …"""
    return tiny_model


@pytest.fixture
def make_trainer():
    """:func:`cpu_trainer`: ``make_trainer(max_epochs=1, callbacks=[...])``."""
    return cpu_trainer


@pytest.fixture
def make_loader():
    """:func:`image_loader`."""
    return image_loader
