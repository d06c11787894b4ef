"""Small models, data and trainers shared by the reliability tests (fast on 2 CPU cores)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ugmm_vision.backbones import SmallCNN
from ugmm_vision.heads import UGMMHead
from ugmm_vision.models import ImageClassifier


def tiny_model(**kwargs) -> ImageClassifier:
    """A small CNN (widths 8, 16) with a uGMM head for 8×8 grey digits; ``kwargs`` override."""
    defaults = dict(backbone=SmallCNN(in_chans=1, widths=(8, 16)), head=UGMMHead, num_classes=8)
    return ImageClassifier(**{**defaults, **kwargs})


def quiet_trainer(**kwargs) -> L.Trainer:
    """A Lightning trainer without logger, progress bar or model summary; ``kwargs`` override."""
    defaults = dict(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    return L.Trainer(**{**defaults, **kwargs})


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
    """:func:`tiny_model` as a fixture (test modules do not import conftest under --import-mode=importlib)."""
    return tiny_model


@pytest.fixture
def make_trainer():
    """:func:`quiet_trainer` as a fixture."""
    return quiet_trainer


@pytest.fixture
def make_loader():
    """:func:`image_loader` as a fixture."""
    return image_loader
