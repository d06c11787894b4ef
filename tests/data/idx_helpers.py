"""Writers of tiny MNIST-family datasets in the official IDX format (``.gz`` or not, flat or torchvision layout)."""

import gzip
import struct

import numpy as np

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_bytes(array):
    """The official IDX encoding: magic 0x0000 08 <ndim>, one big-endian uint32 per dimension, the bytes in C order."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path, array, compress=None):
    """Write ``array`` to ``path`` (gzip-compressed when the name ends in ``.gz`` or ``compress`` is True)."""
    data = idx_bytes(array)
    if compress if compress is not None else str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def tiny_split(rng, per_class, num_classes=10, size=28):
    """Images (N, size, size) uint8 and shuffled labels; pixel [0, 0] encodes the label as 2·label + 1."""
    labels = rng.permutation(np.repeat(np.arange(num_classes), per_class)).astype(np.uint8)
    images = rng.integers(0, 256, size=(len(labels), size, size), dtype=np.uint8)
    images[:, 0, 0] = 2 * labels + 1
    return images, labels


def write_dataset(directory, rng, train_per_class=4, test_per_class=2, gz=True):
    """The four files of a tiny dataset in ``directory``; returns ``{split: (images, labels)}``."""
    directory.mkdir(parents=True, exist_ok=True)
    splits = {"train": tiny_split(rng, train_per_class), "test": tiny_split(rng, test_per_class)}
    suffix = ".gz" if gz else ""
    for split, (images, labels) in splits.items():
        write_idx(directory / (FILES[split][0] + suffix), images)
        write_idx(directory / (FILES[split][1] + suffix), labels)
    return splits
