"""CIFAR-10/100 batches read without running their pickles' code, with errors that name the file.

The CIFAR release stores its batches as Python pickles, and ``pickle.load`` runs whatever a pickle names: a crafted
``data_batch_1`` executes code when torchvision's ``CIFAR10`` opens it. The md5 check stops that only for files that
match the official release, and re-packed or reduced copies (``verify_checksums=False``) skip it. So every CIFAR
file is read here through :class:`RestrictedUnpickler`, which resolves only the few numpy names an array pickle needs
and refuses everything else, whatever the checksum setting. torchvision has no such option, hence the hand-written
subclasses below (they replace only the reading; download, integrity checks and ``__getitem__`` stay torchvision's).

A batch that cannot be read (truncated, not a pickle, missing keys, wrong sizes) raises a ``ValueError`` naming the
file.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from torchvision.datasets import CIFAR10, CIFAR100
from torchvision.datasets.utils import check_integrity
from torchvision.datasets.vision import VisionDataset

__all__ = ["RestrictedUnpickler", "SafeCIFAR10", "SafeCIFAR100", "load_cifar_pickle"]

# What a numpy-array pickle names, by protocol: _reconstruct/ndarray/dtype (0–4), _frombuffer (5), _codecs.encode
# (bytes written by Python 3 at protocol ≤ 2), scalar (numpy scalars); numpy 1 and 2 module names.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain containers, strings, numbers and numpy arrays.

    Any other global a pickle names (``os.system``, a class, a function) raises ``pickle.UnpicklingError`` before it
    is imported, so nothing in the file can run.

    Example:
        >>> import io, os
        >>> class Payload:
        ...     def __reduce__(self):
        ...         return (os.system, ("echo pwned",))
        >>> RestrictedUnpickler(io.BytesIO(pickle.dumps(Payload()))).load()
        Traceback (most recent call last):
        ...
        _pickle.UnpicklingError: Refused to load the global 'posix.system' ...
        >>> RestrictedUnpickler(io.BytesIO(pickle.dumps({"data": np.arange(3)}))).load()["data"].tolist()
        [0, 1, 2]
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"Refused to load the global '{module}.{name}' from a data file: only numpy arrays, lists, dicts, strings "
            "and numbers are expected there, and loading anything else could run code"
        )


def load_cifar_pickle(path: str | Path) -> Any:
    """Read one CIFAR pickle file with :class:`RestrictedUnpickler` (``latin1`` strings, as the release needs).

    Raises:
        ValueError: the file is truncated, not a pickle, or names a global outside numpy's array types; the message
            names the file.
    """
    try:
        with open(path, "rb") as file:
            return RestrictedUnpickler(file, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
        reason = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        raise ValueError(
            f"Could not read the CIFAR file {str(path)!r} ({reason}); it may be truncated, damaged or not a CIFAR "
            "batch. Nothing in it was executed."
        ) from err


def _check_batch(entry: Any, path: str, label_key: str) -> tuple[np.ndarray, list[int]]:
    if not isinstance(entry, dict) or "data" not in entry or label_key not in entry:
        keys = f" with keys {sorted(map(str, entry))[:5]}" if isinstance(entry, dict) else ""
        raise ValueError(
            f"Expected the CIFAR file {path!r} to hold a dict with 'data' and {label_key!r}, got "
            f"{type(entry).__name__}{keys}"
        )
    data, labels = np.asarray(entry["data"]), list(entry[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise ValueError(
            f"Expected the CIFAR file {path!r} to hold uint8 'data' of shape (N, 3072) and N labels, got "
            f"{data.dtype} {data.shape} and {len(labels)} labels; the file may be truncated or re-packed wrongly"
        )
    return data, [int(label) for label in labels]


class _SafeCIFARMixin:
    """Replaces torchvision's pickle-reading ``__init__`` and ``_load_meta`` with the restricted reader."""

    base_folder: str
    train_list: list
    test_list: list
    meta: dict
    label_key = "labels"

    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        transform: Any = None,
        target_transform: Any = None,
        download: bool = False,
    ) -> None:
        VisionDataset.__init__(self, root, transform=transform, target_transform=target_transform)  # type: ignore[arg-type]
        self.train = train
        if download:
            self.download()  # type: ignore[attr-defined]
        if not self._check_integrity():  # type: ignore[attr-defined]
            raise RuntimeError("Dataset not found or corrupted. You can use download=True to download it")
        parts, targets = [], []
        for file_name, _ in self.train_list if train else self.test_list:
            path = os.path.join(self.root, self.base_folder, file_name)  # type: ignore[attr-defined]
            data, labels = _check_batch(load_cifar_pickle(path), path, self.label_key)
            parts.append(data)
            targets.extend(labels)
        self.data = np.vstack(parts).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))  # (N, 32, 32, 3) HWC
        self.targets = targets
        self._load_meta()

    def _load_meta(self) -> None:
        path = os.path.join(self.root, self.base_folder, self.meta["filename"])  # type: ignore[attr-defined]
        if not check_integrity(path, self.meta["md5"]):
            raise RuntimeError("Dataset metadata file not found or corrupted. You can use download=True to download it")
        meta = load_cifar_pickle(path)
        if not isinstance(meta, dict) or self.meta["key"] not in meta:
            raise ValueError(f"Expected the CIFAR meta file {path!r} to hold a dict with {self.meta['key']!r}")
        self.classes = [str(name) for name in meta[self.meta["key"]]]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


class SafeCIFAR10(_SafeCIFARMixin, CIFAR10):
    """torchvision's ``CIFAR10`` reading its batches with :class:`RestrictedUnpickler`."""


class SafeCIFAR100(_SafeCIFARMixin, CIFAR100):
    """torchvision's ``CIFAR100`` reading its batches with :class:`RestrictedUnpickler`."""

    label_key = "fine_labels"
