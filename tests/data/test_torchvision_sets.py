"""The torchvision data modules on tiny files written in each dataset's real on-disk format."""

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import yaml

from ugmm_vision.cli import build_cli
from ugmm_vision.data import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
    SVHNDataModule,
)
from ugmm_vision.data.torchvision_sets import TORCHVISION_SETS, TorchvisionDataModule

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
MODULES = {
    "mnist": MNISTDataModule,
    "fashion_mnist": FashionMNISTDataModule,
    "cifar10": CIFAR10DataModule,
    "cifar100": CIFAR100DataModule,
    "svhn": SVHNDataModule,
}
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def tiny_split(rng, num_classes, per_class, shape):
    """Images (N, *shape) uint8 and shuffled labels (N,); pixel [0, 0] of channel 0 encodes the label."""
    labels = rng.permutation(np.repeat(np.arange(num_classes), per_class))
    images = rng.integers(0, 256, size=(len(labels), *shape), dtype=np.uint8)
    images.reshape(len(labels), -1)[:, 0] = 2 * labels + 1  # first byte: row 0, col 0, channel 0 in HWC and HW
    return images, labels


def write_idx(path, array):
    """MNIST's idx-ubyte format: big-endian magic (0x08 = uint8, then the number of dims), sizes, raw bytes."""
    header = struct.pack(">I", 0x0800 + array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root, folder, rng):
    raw = root / folder / "raw"  # uncompressed files; torchvision checks these for existence only (no md5)
    raw.mkdir(parents=True)
    splits = {"train": tiny_split(rng, 10, 4, (28, 28)), "test": tiny_split(rng, 10, 2, (28, 28))}
    for prefix, (images, labels) in zip(("train", "t10k"), splits.values(), strict=True):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return splits


def write_cifar(root, rng, hundred):
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    num_classes = 100 if hundred else 10
    splits = {
        "train": tiny_split(rng, num_classes, 4, (32, 32, 3)),
        "test": tiny_split(rng, num_classes, 1, (32, 32, 3)),
    }

    def batch(images, labels):
        data = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)  # rows of 1024 R, 1024 G, 1024 B
        key = "fine_labels" if hundred else "labels"
        extra = {"coarse_labels": [int(v) // 5 for v in labels]} if hundred else {}
        return {"batch_label": "tiny", key: [int(v) for v in labels], "data": data, "filenames": [], **extra}

    def dump(name, obj):
        with open(folder / name, "wb") as f:
            pickle.dump(obj, f)

    (train_x, train_y), (test_x, test_y) = splits["train"], splits["test"]
    if hundred:
        dump("train", batch(train_x, train_y))
        dump("test", batch(test_x, test_y))
        dump(
            "meta",
            {"fine_label_names": [f"c{i}" for i in range(100)], "coarse_label_names": list("abcdefghijklmnopqrst")},
        )
    else:
        for i, part in enumerate(np.array_split(np.arange(len(train_y)), 5)):
            dump(f"data_batch_{i + 1}", batch(train_x[part], train_y[part]))
        dump("test_batch", batch(test_x, test_y))
        dump("batches.meta", {"label_names": CIFAR10_NAMES, "num_cases_per_batch": 8, "num_vis": 3072})
    return splits


def write_svhn(root, rng):
    splits = {"train": tiny_split(rng, 10, 4, (32, 32, 3)), "test": tiny_split(rng, 10, 2, (32, 32, 3))}
    for split, (images, labels) in splits.items():
        y = np.where(labels == 0, 10, labels).astype(np.uint8)[:, None]  # SVHN stores digit 0 as label 10
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": images.transpose(1, 2, 3, 0), "y": y})  # X: (H, W, C, N)
    return splits


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("torchvision_data")
    rng = np.random.default_rng(0)
    truth = {
        "mnist": write_mnist(root, "MNIST", rng),
        "fashion_mnist": write_mnist(root, "FashionMNIST", rng),
        "cifar10": write_cifar(root, rng, hundred=False),
        "cifar100": write_cifar(root, rng, hundred=True),
        "svhn": write_svhn(root, rng),
    }
    return root, truth


def make(name, root, **kwargs):
    kwargs = {"download": False, "verify_checksums": False, "val_fraction": 0.25, "batch_size": 8, **kwargs}
    dm = MODULES[name](root=root, **kwargs)
    dm.setup()
    return dm


@pytest.mark.parametrize("name", list(MODULES))
def test_splits_labels_normalisation_and_loader_names(tiny_root, name):
    root, truth = tiny_root
    spec = TORCHVISION_SETS[name]
    dm = make(name, root)
    (_, train_y), (test_x, test_y) = truth[name]["train"], truth[name]["test"]
    assert len(dm.train_set) + len(dm.val_set) == len(train_y) and len(dm.test_set) == len(test_y)
    assert not set(dm.train_set.indices) & set(dm.val_set.indices)
    val_counts = np.bincount(train_y[dm.val_set.indices], minlength=spec.num_classes)
    assert val_counts.min() == val_counts.max()  # stratified
    assert dm.num_classes == spec.num_classes == len(dm.class_names)
    assert dm.mean == spec.mean and dm.std == spec.std
    mean, std = torch.tensor(spec.mean).view(-1, 1, 1), torch.tensor(spec.std).view(-1, 1, 1)
    for i in (0, len(test_y) - 1):
        image, label = dm.test_set[i]
        assert label == test_y[i]
        raw = (
            torch.from_numpy(test_x[i]).float().reshape(28, 28, 1)
            if spec.channels == 1
            else torch.from_numpy(test_x[i]).float()
        )
        torch.testing.assert_close(image, (raw.permute(2, 0, 1) / 255 - mean) / std)  # ToTensor + Normalize
        assert round(float(image[0, 0, 0] * std[0] + mean[0]) * 255) == 2 * label + 1
    for index, (image, label) in zip(dm.val_set.indices[:3], list(dm.val_set)[:3], strict=True):
        assert label == train_y[index] and round(float(image[0, 0, 0] * std[0] + mean[0]) * 255) == 2 * label + 1
    assert list(dm.test_dataloader()) == ["id", f"ood/{spec.ood_partner}"]
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (8, spec.channels, spec.size, spec.size) and labels.dtype == torch.long
    ood_images, _ = next(iter(dm.test_dataloader()[f"ood/{spec.ood_partner}"]))
    assert ood_images.shape[1:] == images.shape[1:]


def test_class_names_from_the_files(tiny_root):
    root, _ = tiny_root
    with pytest.raises(RuntimeError, match="setup"):
        CIFAR10DataModule(root=root).class_names  # noqa: B018
    assert make("cifar10", root).class_names == CIFAR10_NAMES
    assert make("cifar100", root).class_names[:2] == ["c0", "c1"]
    assert make("mnist", root).class_names[0] == "0 - zero"


def test_split_is_deterministic_and_depends_on_seed(tiny_root):
    root, _ = tiny_root
    a, b, c = (make("cifar10", root, seed=s, ood_dataset=None) for s in (3, 3, 4))
    assert a.val_set.indices == b.val_set.indices and a.val_set.indices != c.val_set.indices
    assert torch.equal(a.val_set[0][0], b.val_set[0][0])


def test_ood_set_converted_to_the_in_distribution_shape(tiny_root):
    root, truth = tiny_root
    dm = make("mnist", root, ood_dataset="cifar10")  # colour 32×32 → grey 28×28
    image, _ = dm.ood_sets["ood/cifar10"][0]
    assert image.shape == (1, 28, 28)
    dm = make("cifar10", root, ood_dataset="fashion_mnist")  # grey 28×28 → RGB 32×32, normalised like CIFAR
    image, _ = dm.ood_sets["ood/fashion_mnist"][0]
    pixels = image * torch.tensor(dm.std).view(3, 1, 1) + torch.tensor(dm.mean).view(3, 1, 1)
    assert image.shape == (3, 32, 32)
    torch.testing.assert_close(pixels[0], pixels[2])  # grey repeated across channels
    assert len(dm.ood_sets["ood/fashion_mnist"]) == len(truth["fashion_mnist"]["test"][1])
    assert list(make("svhn", root, ood_dataset=None).test_dataloader()) == ["id"]


def test_channels_and_size_options(tiny_root):
    root, _ = tiny_root
    dm = make("mnist", root, num_channels=3, image_size=32)
    images, _ = next(iter(dm.train_dataloader()))
    assert images.shape == (8, 3, 32, 32) and dm.mean == (0.1307,) * 3
    dm = make("cifar10", root, num_channels=1, augment=True)
    assert dm.test_set[0][0].shape == (1, 32, 32) and len(dm.mean) == 1


def test_timm_data_config_builds_timm_transforms(tiny_root):
    root, _ = tiny_root
    config = {
        "input_size": [3, 40, 40],
        "interpolation": "bilinear",
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25] * 3,
        "crop_pct": 1.0,
    }
    dm = make("mnist", root, timm_data_config=config)  # grey data, 3-channel timm model
    assert dm.num_channels == 3 and dm.mean == (0.5, 0.5, 0.5)
    train_images, _ = next(iter(dm.train_dataloader()))
    assert train_images.shape == (8, 3, 40, 40)
    image, _ = dm.test_set[0]
    assert image.shape == (3, 40, 40) and torch.equal(image[0], image[1])
    assert dm.ood_sets["ood/fashion_mnist"][0][0].shape == (3, 40, 40)
    assert "RandomResizedCrop" in repr(dm.train_set.transform) and "RandomResizedCrop" not in repr(
        dm.test_set.transform
    )


def test_real_checksums_and_download_path(tiny_root):
    root, _ = tiny_root
    # CIFAR and SVHN verify md5 against the official release: tiny copies are refused unless told otherwise.
    for name in ("cifar10", "cifar100", "svhn"):
        with pytest.raises(RuntimeError, match="corrupted"):
            make(name, root, verify_checksums=True, ood_dataset=None)
    # download=True finds the files present and fetches nothing (no internet here).
    dm = make("mnist", root, download=True, verify_checksums=True)
    dm.prepare_data()
    assert len(dm.test_set) == 20
    assert len(make("cifar10", root, download=True, ood_dataset=None).test_set) == 10


def test_shift_loaders_on_a_torchvision_set(tiny_root):
    root, _ = tiny_root
    dm = make("svhn", root, ood_dataset=None)
    loaders = dm.shift_dataloaders(["jpeg", "gaussian_noise"], severities=(2,))
    assert list(loaders) == ["shift/jpeg/2", "shift/gaussian_noise/2"]
    shifted, labels = next(iter(loaders["shift/gaussian_noise/2"]))
    clean, clean_labels = next(iter(dm.test_dataloader()["id"]))
    assert torch.equal(labels, clean_labels) and shifted.shape == clean.shape
    std = torch.tensor(dm.std).view(1, 3, 1, 1)
    residual = (shifted - clean) * std
    assert 0.03 < residual.std() < 0.07  # severity 2: σ = 0.06, a little less after clipping


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ood_dataset": "imagenet"}, r"`ood_dataset` in \['default', 'fashion_mnist', 'cifar10'"),
        ({"ood_dataset": "mnist"}, "`ood_dataset`"),
        ({"num_channels": 2}, r"`num_channels` in \{1, 3\}"),
        ({"val_fraction": 1.0}, r"`val_fraction` in \(0, 1\)"),
        ({"batch_size": 0}, "`batch_size`"),
        ({"mean": (0.1, 0.2)}, "`mean` with 1 or 1 values, got 2"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MNISTDataModule(**kwargs)


def test_base_class_needs_a_dataset():
    with pytest.raises(ValueError, match="`dataset_name`"):
        TorchvisionDataModule()


@pytest.mark.parametrize("config", list(MODULES))
def test_config_overrides_parse(tmp_path, monkeypatch, capsys, config):
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", str(CONFIGS / "digits.yaml"), "--config", str(CONFIGS / f"{config}.yaml")]
    with pytest.raises(SystemExit):
        build_cli([*args, "--print_config"])
    parsed = yaml.safe_load(capsys.readouterr().out)
    assert parsed["data"]["class_path"] == f"ugmm_vision.data.{MODULES[config].__name__}"
    root = None if config == "fashion_mnist" else "data"  # Fashion-MNIST: the system package's files, else data/
    assert parsed["data"]["init_args"]["root"] == root and parsed["data"]["init_args"]["download"] is True
    assert parsed["data"]["init_args"]["ood_classes"] == ([9] if config == "fashion_mnist" else [])
    assert parsed["data"]["init_args"]["ood_dataset"] == "default"
    assert parsed["model"]["init_args"]["backbone"]["init_args"]["in_chans"] == TORCHVISION_SETS[config].channels
    assert parsed["trainer"]["default_root_dir"] == f"outputs/{config}"
    assert parsed["trainer"]["callbacks"][0]["init_args"]["dirpath"] == f"outputs/{config}/checkpoints"
    assert parsed["trainer"]["logger"]["init_args"]["save_dir"] == f"outputs/{config}"


def test_config_fits_on_tiny_files(tiny_root, tmp_path, monkeypatch):
    root, _ = tiny_root
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", str(CONFIGS / "digits.yaml"), "--config", str(CONFIGS / "cifar100.yaml")]
    data = [
        f"--data.init_args.{k}" for k in (f"root={root}", "download=false", "verify_checksums=false", "batch_size=8")
    ]
    cli = build_cli([*args, *data, "--trainer.fast_dev_run=true"])
    assert type(cli.datamodule) is CIFAR100DataModule and cli.model.num_classes == 100  # linked from the data
    assert cli.model.backbone.in_chans == 3
    assert cli.trainer.state.finished and "train/loss" in cli.trainer.logged_metrics
