"""The IDX reader on small files written in the official format, and on the real Fashion-MNIST files if installed."""

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ugmm_vision.data.idx_files import (
    IdxFileError,
    IdxImageDataset,
    find_idx_files,
    load_idx_split,
    read_idx,
)

_spec = importlib.util.spec_from_file_location("idx_helpers", Path(__file__).with_name("idx_helpers.py"))
idx_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(idx_helpers)

SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip_compressed_or_not(tmp_path, name):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 3, 4), dtype=np.uint8)
    path = idx_helpers.write_idx(tmp_path / name, images)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    out = read_idx(path, ndim=3)
    assert out.dtype == np.uint8 and np.array_equal(out, images)


def test_header_matches_hand_encoded_bytes(tmp_path):
    # 2 labels, hand-encoded: magic 00 00 08 01, count 00 00 00 02, then the values.
    path = tmp_path / "labels"
    path.write_bytes(bytes.fromhex("00000801000000020705"))
    assert read_idx(path).tolist() == [7, 5]
    assert idx_helpers.idx_bytes(np.array([7, 5], np.uint8)) == path.read_bytes()


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("cut", ["header", "data"])
def test_truncated_file_names_the_file(tmp_path, gz, cut):
    data = idx_helpers.idx_bytes(np.zeros((4, 28, 28), np.uint8))
    data = data[:10] if cut == "header" else data[:-100]
    path = tmp_path / ("t10k-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(IdxFileError, match="truncated") as info:
        read_idx(path, ndim=3)
    assert str(path) in str(info.value)


def test_truncated_gzip_stream_names_the_file(tmp_path):
    compressed = gzip.compress(idx_helpers.idx_bytes(np.zeros((50, 28, 28), np.uint8)))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(compressed[: len(compressed) // 2])  # a download cut off half way
    with pytest.raises(IdxFileError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("magic", "match"),
    [
        (bytes.fromhex("1234 0803"), "magic number 0x12340803"),  # not an IDX file
        (bytes.fromhex("0000 0d03"), "magic number 0x00000d03"),  # float32 IDX: another type
        (bytes.fromhex("0000 0800"), "magic number 0x00000800"),  # zero dimensions
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_wrong_magic_number_names_the_file(tmp_path, magic, match, gz):
    data = magic + idx_helpers.idx_bytes(np.zeros((2, 2, 2), np.uint8))[4:]
    path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(IdxFileError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_wrong_dimensions_trailing_bytes_and_mismatched_counts(tmp_path):
    labels = idx_helpers.write_idx(tmp_path / "labels", np.arange(3, dtype=np.uint8))
    with pytest.raises(IdxFileError, match=r"3 dimension\(s\).*got 1"):
        read_idx(labels, ndim=3)
    padded = tmp_path / "padded"
    padded.write_bytes(labels.read_bytes() + b"\0")
    with pytest.raises(IdxFileError, match="trailing bytes"):
        read_idx(padded)
    images = idx_helpers.write_idx(tmp_path / "images", np.zeros((4, 2, 2), np.uint8))
    with pytest.raises(IdxFileError, match=f"as many labels in {labels}"):
        load_idx_split(images, labels)
    with pytest.raises(FileNotFoundError, match="missing"):
        read_idx(tmp_path / "missing")


def test_labels_out_of_range_name_the_file(tmp_path):
    images = idx_helpers.write_idx(tmp_path / "i", np.zeros((2, 2, 2), np.uint8))
    labels = idx_helpers.write_idx(tmp_path / "l", np.array([1, 12], np.uint8))
    with pytest.raises(IdxFileError, match=rf"0–9 in {labels}, got 12"):
        IdxImageDataset.from_files(images, labels, [str(i) for i in range(10)])


@pytest.mark.parametrize("layout", ["flat_gz", "flat_raw", "torchvision_raw", "torchvision_gz"])
def test_find_files_in_either_layout(tmp_path, layout):
    directory = tmp_path / "FashionMNIST" / "raw" if layout.startswith("torchvision") else tmp_path
    truth = idx_helpers.write_dataset(directory, np.random.default_rng(1), gz=layout.endswith("gz"))
    found = find_idx_files(tmp_path, "FashionMNIST")
    assert {split: paths[0].parent for split, paths in found.items()} == {"train": directory, "test": directory}
    dataset = IdxImageDataset.from_files(*found["test"], [str(i) for i in range(10)])
    images, labels = truth["test"]
    assert len(dataset) == len(labels) and np.array_equal(dataset.targets, labels)
    image, label = dataset[3]
    assert image.mode == "L" and np.array_equal(np.asarray(image), images[3]) and label == labels[3]
    other = find_idx_files(tmp_path, "MNIST")  # a flat directory is any dataset's; torchvision's is per name
    assert other == found if layout.startswith("flat") else other is None


def test_incomplete_directory_is_not_found(tmp_path):
    idx_helpers.write_dataset(tmp_path, np.random.default_rng(2))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    assert find_idx_files(tmp_path, "FashionMNIST") is None


@pytest.mark.skipif(
    find_idx_files(SYSTEM_FASHION_MNIST, "FashionMNIST") is None,
    reason=f"Debian's dataset-fashion-mnist is not installed (no files in {SYSTEM_FASHION_MNIST}); "
    "install it with `apt-get update && apt-get install -y dataset-fashion-mnist` (or `make data`)",
)
def test_real_fashion_mnist_files_from_the_system_package():
    found = find_idx_files(SYSTEM_FASHION_MNIST, "FashionMNIST")
    for split, count in (("train", 60_000), ("test", 10_000)):
        images, labels = load_idx_split(*found[split])
        assert images.shape == (count, 28, 28) and images.dtype == np.uint8
        assert np.bincount(labels, minlength=10).tolist() == [count // 10] * 10
        assert 0.25 < images.mean() / 255 < 0.32  # Fashion-MNIST's mean pixel, 0.286 (MNIST's would be 0.13)
