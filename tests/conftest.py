"""The small model, quiet trainer, loader and working folder that tests across the suite share (fast on 2 CPUs).

Test modules do not import this file (``--import-mode=importlib``): they ask for the fixtures ``make_model``,
``make_trainer``, ``make_loader``, ``in_tmp``, ``kill_mid_write`` and ``largest_tensor``. The helper modules of
:data:`HELPER_MODULES` are registered here under their own names, so that test modules import them plainly
(``import ugmm_ops_cases``) although their folders are not on ``sys.path``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader, TensorDataset

from ugmm_vision.backbones import SmallCNN
from ugmm_vision.heads import UGMMHead
from ugmm_vision.models import ImageClassifier
from ugmm_vision.trainers import quiet_trainer

# below tests/: shared by several test modules, not tests themselves
HELPER_MODULES = ("ops/ugmm_ops_cases.py", "logit_cases.py")


def _register_helper_modules() -> None:
    for relative in HELPER_MODULES:
        path = Path(__file__).parent / relative
        if path.stem not in sys.modules:
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)


_register_helper_modules()


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


@pytest.fixture(scope="session")
def make_model():
    """:func:`tiny_model`: ``make_model(head=LinearHead)``, ``make_model(num_classes=2)``, …"""
    return tiny_model


@pytest.fixture(scope="session")
def make_trainer():
    """:func:`cpu_trainer`: ``make_trainer(max_epochs=1, callbacks=[...])``."""
    return cpu_trainer


@pytest.fixture(scope="session")
def make_loader():
    """:func:`image_loader`."""
    return image_loader


def _kill_mid_write(monkeypatch: pytest.MonkeyPatch, starts_with: bytes = b"") -> list[int]:
    real_fdopen = os.fdopen
    interrupted: list[int] = []

    def fdopen(fd, *args, **kwargs):
        handle = real_fdopen(fd, *args, **kwargs)

        class HalfWriter:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                handle.close()

            def write(self, data):
                if not interrupted and bytes(data[: len(starts_with)]) == starts_with:
                    handle.write(data[: len(data) // 2])
                    handle.flush()
                    interrupted.append(len(data))
                    raise KeyboardInterrupt  # the process stopped mid-write: a BaseException, like Ctrl-C
                return handle.write(data)

            def flush(self):
                handle.flush()

            def fileno(self):
                return handle.fileno()

        return HalfWriter()

    monkeypatch.setattr(os, "fdopen", fdopen)  # how ugmm_vision.io opens its temporary files
    return interrupted


@pytest.fixture
def kill_mid_write(monkeypatch):
    """``kill_mid_write(starts_with=b"")``: the next atomic write whose data starts with ``starts_with`` stops after
    half of its bytes with a ``KeyboardInterrupt``; returns a list that receives the size of each interrupted write."""
    return functools.partial(_kill_mid_write, monkeypatch)


class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor a torch operator returns while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.fixture(scope="session")
def largest_tensor():
    """:class:`LargestTensor`: ``with largest_tensor() as probe: ...``, then ``probe.largest``."""
    return LargestTensor
