"""MNIST-format (IDX) files: a checked reader for ``.gz`` or uncompressed files, in torchvision's or a flat layout.

The MNIST family (MNIST, Fashion-MNIST) ships as four IDX files (``train-images-idx3-ubyte.gz`` …): a 4-byte magic
number (two zero bytes, a type code — ``0x08`` for unsigned bytes — and the number of dimensions), one big-endian
int32 per dimension, then the values in C order. torchvision reads them only uncompressed from
``<root>/<Name>/raw/``; Debian's ``dataset-fashion-mnist`` installs the official ``.gz`` files flat into
``/usr/share/datasets/fashion-mnist/``. :func:`find_idx_files` accepts both layouts, compressed or not, and
:func:`read_idx` checks every file (magic number, header, length) so that a damaged copy fails with an error naming
the file instead of a reshape error deep inside a loader.

Written here rather than taken from torchvision because torchvision's reader (``read_sn3_pascalvincent_tensor``)
needs the uncompressed files in its own layout and does not check the length against the header.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

__all__ = [
    "IDX_FILES",
    "IdxFileError",
    "IdxImageDataset",
    "find_idx_files",
    "load_idx_split",
    "read_idx",
]

IDX_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
"""The official file names (without ``.gz``) of the images and labels of each split."""

_UBYTE = 0x08  # the only type code the MNIST family uses
_GZIP_MAGIC = b"\x1f\x8b"


class IdxFileError(ValueError):
    """An IDX file is damaged (truncated, wrong magic number, inconsistent header); the message names the file."""


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
    try:
        if head == _GZIP_MAGIC:  # by content, not by the name: a renamed file still reads
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, OSError, zlib.error) as err:
        raise IdxFileError(f"Could not read the IDX file {path}: damaged or truncated gzip data ({err})") from err


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """Read one IDX file of unsigned bytes (``.gz`` or uncompressed) into a numpy array, checking it fully.

    Args:
        path: the file.
        ndim: the number of dimensions it must have (3 for images, 1 for labels; None: any).

    Returns:
        A ``uint8`` array of the shape the header gives.

    Raises:
        FileNotFoundError: the file does not exist.
        IdxFileError: wrong magic number, unsupported type code, wrong number of dimensions, or a length that does
            not match the header (a truncated or padded file); the message names the file.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
        >>> _ = path.write_bytes(bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([7, 0, 9]))
        >>> read_idx(path, ndim=1)
        array([7, 0, 9], dtype=uint8)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Expected an IDX file at {path}, found none")
    data = _read_bytes(path)
    if len(data) < 4:
        raise IdxFileError(f"Expected an IDX file at {path}, got {len(data)} bytes (truncated: no magic number)")
    zero, type_code, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or type_code != _UBYTE or dims == 0:
        raise IdxFileError(
            f"Expected an IDX file of unsigned bytes at {path} (magic number 0x0000 08 0d), got magic number "
            f"0x{data[:4].hex()} (not an IDX file, or one of another type)"
        )
    if ndim is not None and dims != ndim:
        raise IdxFileError(f"Expected an IDX file with {ndim} dimension(s) at {path}, got {dims}")
    header = 4 + 4 * dims
    if len(data) < header:
        raise IdxFileError(f"Expected {header} header bytes in the IDX file {path}, got {len(data)} (truncated)")
    shape = struct.unpack(f">{dims}I", data[4:header])  # (N, H, W) for images, (N,) for labels
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "trailing bytes"
        raise IdxFileError(
            f"Expected {expected} bytes in the IDX file {path} (shape {tuple(shape)} from its header), "
            f"got {len(data)} ({what})"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def find_idx_files(root: str | Path, folder: str) -> dict[str, tuple[Path, Path]] | None:
    """Locate the four IDX files of a dataset under ``root``, in torchvision's or a flat layout.

    Looks in ``<root>/<folder>/raw/`` (torchvision's layout) and then in ``<root>/`` itself (a flat directory such as
    the one Debian's ``dataset-fashion-mnist`` installs), each file uncompressed or as ``.gz``.

    Args:
        root: the directory to look in.
        folder: torchvision's folder name of the dataset (``"MNIST"``, ``"FashionMNIST"``).

    Returns:
        ``{"train": (images, labels), "test": (images, labels)}`` from the first directory holding all four files,
        or None when neither does.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> for images, labels in IDX_FILES.values():
        ...     _ = (root / f"{images}.gz").write_bytes(b""), (root / labels).write_bytes(b"")
        >>> find_idx_files(root, "FashionMNIST")["test"][0].name
        't10k-images-idx3-ubyte.gz'
    """
    root = Path(root)
    for directory in (root / folder / "raw", root):
        found: dict[str, tuple[Path, Path]] = {}
        for split, names in IDX_FILES.items():
            paths = [next((p for p in (directory / n, directory / f"{n}.gz") if p.is_file()), None) for n in names]
            if None in paths:
                break
            found[split] = (paths[0], paths[1])  # type: ignore[assignment]
        else:
            return found
    return None


def load_idx_split(images_path: str | Path, labels_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a split's images ``(N, H, W)`` and labels ``(N,)`` and check that they belong together.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (2, 1, 1))
        >>> _ = (root / "i").write_bytes(header + b"ab")
        >>> _ = (root / "l").write_bytes(bytes([0, 0, 8, 1]) + (2).to_bytes(4, "big") + bytes([4, 2]))
        >>> images, labels = load_idx_split(root / "i", root / "l")
        >>> images.shape, labels.tolist()
        ((2, 1, 1), [4, 2])
    """
    images, labels = read_idx(images_path, ndim=3), read_idx(labels_path, ndim=1)
    if len(images) != len(labels):
        raise IdxFileError(
            f"Expected as many labels in {labels_path} as images in {images_path}, got {len(labels)} and {len(images)}"
        )
    return images, labels


class IdxImageDataset(Dataset):
    """In-memory ``(PIL grey image, label)`` pairs read from a split's two IDX files; like torchvision's MNIST.

    Attributes:
        data: the images, ``(N, H, W)`` uint8.
        targets: the labels, ``(N,)`` int64.
        classes: the class names, indexed by label.

    Example:
        >>> ds = IdxImageDataset(np.zeros((2, 28, 28), np.uint8), np.array([3, 1]), [str(i) for i in range(10)])
        >>> len(ds), ds[0][0].size, ds[0][1]
        (2, (28, 28), 3)
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: list[str]) -> None:
        self.data = images
        self.targets = np.asarray(labels, dtype=np.int64)
        self.classes = list(classes)

    @classmethod
    def from_files(cls, images_path: str | Path, labels_path: str | Path, classes: list[str]) -> IdxImageDataset:
        """Read and check the two files (see :func:`load_idx_split`); labels must index ``classes``."""
        images, labels = load_idx_split(images_path, labels_path)
        if len(labels) and int(labels.max()) >= len(classes):
            raise IdxFileError(f"Expected labels in 0–{len(classes) - 1} in {labels_path}, got {int(labels.max())}")
        return cls(images, labels, classes)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = Image.fromarray(self.data[index])  # uint8 (H, W): mode "L"
        return image, int(self.targets[index])
