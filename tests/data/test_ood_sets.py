"""Offline OOD sets on every data module: held-out classes, resized digits, image folders, synthetic noise."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from ugmm_vision.data import (
    CIFAR10DataModule,
    DigitsDataModule,
    FashionMNISTDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
    torchvision_sets,
)
from ugmm_vision.data.ood_sets import NoiseImages, ResizedDigits, image_folder_ood


def _load(name):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


idx_helpers = _load("idx_helpers")
tv_tests = _load("test_torchvision_sets")


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """Tiny Fashion-MNIST (flat .gz, the Debian layout), MNIST (torchvision layout), CIFAR-10 and an image folder."""
    base = tmp_path_factory.mktemp("ood")
    rng = np.random.default_rng(0)
    fashion = idx_helpers.write_dataset(base / "fashion", rng, train_per_class=6, test_per_class=3)
    mnist = idx_helpers.write_dataset(base / "mnist" / "MNIST" / "raw", rng, gz=False)
    cifar = base / "cifar"
    cifar.mkdir()
    tv_tests.write_cifar(cifar, rng, hundred=False)
    folder = base / "folder"
    for split, count in (("train", 6), ("test", 3)):
        for c, name in enumerate(("ant", "bee", "cat", "dog")):
            (folder / split / name).mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (20, 20), (60 * c + 1, i, 0)).save(folder / split / name / f"{i}.png")
    return {"fashion": base / "fashion", "fashion_truth": fashion, "mnist": base / "mnist", "mnist_truth": mnist,
            "cifar": cifar, "folder": folder}  # fmt: skip


def first_pixel(dm, image):
    """The first raw pixel (0–255) of a normalised image tensor."""
    return round(float(image[0, 0, 0] * dm.std[0] + dm.mean[0]) * 255)


def original_label(dm, image):
    """The label a test writer encoded in the image: 2·label + 1 in pixel [0, 0] (idx/CIFAR) or red = 60·label + 1."""
    return (first_pixel(dm, image) - 1) // (60 if isinstance(dm, ImageFolderDataModule) else 2)


def make(kind, roots, **kwargs):
    common = {"batch_size": 4, "val_fraction": 0.25, **kwargs}
    if kind == "fashion_mnist":
        dm = FashionMNISTDataModule(root=roots["fashion"], download=False, **common)
    elif kind == "mnist":
        dm = MNISTDataModule(root=roots["mnist"], download=False, ood_dataset=None, **common)
    elif kind == "cifar10":
        dm = CIFAR10DataModule(root=roots["cifar"], download=False, verify_checksums=False, ood_dataset=None, **common)
    else:
        dm = ImageFolderDataModule(roots["folder"], **common)
    dm.setup()
    return dm


@pytest.mark.parametrize(
    ("kind", "held", "total", "test_per_class"),
    [("fashion_mnist", (3, 7), 10, 3), ("mnist", (0,), 10, 2), ("cifar10", (9, 1), 10, 1), ("folder", (2,), 4, 3)],
)
def test_held_out_classes_leave_training_and_form_the_ood_set(roots, kind, held, total, test_per_class):
    dm = make(kind, roots, ood_classes=held)
    kept = [c for c in range(total) if c not in held]
    assert dm.num_classes == total - len(held) == len(dm.class_names)
    loaders = dm.test_dataloader()
    assert "ood/held_out" in loaders and next(iter(loaders)) == "id"
    for part in (dm.train_set, dm.val_set, dm.test_set):
        originals = [original_label(dm, image) for image, _ in part]
        labels = [label for _, label in part]
        assert not set(originals) & set(held)  # no held-out class leaks into train, validation or id test
        assert labels == [kept.index(o) for o in originals]  # the others relabelled 0 … K−1 in increasing order
    held_out = dm.ood_sets["ood/held_out"]
    assert len(held_out) == len(held) * test_per_class
    assert sorted({original_label(dm, image) for image, _ in held_out}) == sorted(held)
    assert all(label in held for _, label in held_out)  # the original labels, never scored as classes
    assert len(dm.test_set) == (total - len(held)) * test_per_class
    images, _ = next(iter(loaders["ood/held_out"]))
    assert images.shape[1:] == dm.test_set[0][0].shape


def test_digits_set_is_sklearn_digits_resized_to_the_data(roots):
    dm = make("fashion_mnist", roots)  # the default partner of Fashion-MNIST: offline
    assert dm.ood_dataset == "digits" and list(dm.test_dataloader()) == ["id", "ood/digits"]
    digits = dm.ood_sets["ood/digits"]
    assert len(digits) == 1797
    image, label = digits[5]
    assert image.shape == (1, 28, 28) and label == load_digits().target[5]
    pixels = image[0] * dm.std[0] + dm.mean[0]  # back to [0, 1]
    box = slice(4, 24)  # MNIST's proportions: a 20-pixel digit centred in 28
    outside = torch.ones(28, 28, dtype=torch.bool)
    outside[box, box] = False
    assert pixels[outside].abs().max() < 1e-6
    # Shrunk back to 8×8 by area averaging, the digit matches scikit-learn's original (an independent path).
    small = torch.nn.functional.adaptive_avg_pool2d(pixels[box, box][None, None], 8)[0, 0]
    original = torch.as_tensor(load_digits().images[5] / 16, dtype=torch.float32)
    assert torch.corrcoef(torch.stack([small.flatten(), original.flatten()]))[0, 1] > 0.9
    rgb = make("cifar10", roots, extra_ood=["digits"]).ood_sets["ood/digits"][0][0]
    assert rgb.shape == (3, 32, 32)


@pytest.mark.parametrize("layout", ["image_folder", "flat"])
def test_folder_ood_set_converted_to_the_in_distribution_shape(roots, tmp_path, layout):
    folder = tmp_path / "street_signs"
    target = folder / "stop" if layout == "image_folder" else folder
    target.mkdir(parents=True)
    for i in range(5):
        Image.new("RGB", (40, 30), (255, 40 * i, 0)).save(target / f"{i}.png")
    (folder / "notes.txt").write_text("not an image")
    dm = make("fashion_mnist", roots, ood_dataset=None, ood_folders=[str(folder)])
    assert list(dm.test_dataloader()) == ["id", "ood/street_signs"]
    ood = dm.ood_sets["ood/street_signs"]
    assert len(ood) == 5 and all(image.shape == (1, 28, 28) for image, _ in ood)
    assert type(image_folder_ood(folder)).__name__ == ("ImageFolder" if layout == "image_folder" else "FlatImageFolder")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        make("fashion_mnist", roots, ood_folders=[str(tmp_path / "nowhere")])


@pytest.mark.parametrize("kind", ["gaussian", "uniform", "constant"])
def test_noise_sets_sized_like_the_test_set_seeded(roots, kind):
    dm = make("fashion_mnist", roots, ood_dataset=kind, seed=3)
    assert list(dm.test_dataloader()) == ["id", f"ood/{kind}"]
    ood = dm.ood_sets[f"ood/{kind}"]
    assert len(ood) == len(dm.test_set) == 30
    images = torch.stack([image for image, _ in ood])  # (30, 1, 28, 28)
    assert images.shape == (30, 1, 28, 28)
    pixels = (images * dm.std[0] + dm.mean[0]).double()  # back to [0, 1]
    assert pixels.min() >= 0 and pixels.max() <= 1
    if kind == "constant":
        assert (pixels.amax(dim=(1, 2, 3)) - pixels.amin(dim=(1, 2, 3))).max() < 1e-6
        assert pixels[:, 0, 0, 0].std() > 0.1  # a different level per image
    else:  # moments of N(0.5, 0.25²) (clipping at 0 and 1 takes a little variance) and of U(0, 1)
        expected_std = 0.2437 if kind == "gaussian" else 12**-0.5
        assert abs(pixels.mean() - 0.5) < 0.01 and abs(pixels.std() - expected_std) < 0.01
    again = make("fashion_mnist", roots, ood_dataset=kind, seed=3).ood_sets[f"ood/{kind}"]
    other = make("fashion_mnist", roots, ood_dataset=kind, seed=4).ood_sets[f"ood/{kind}"]
    assert torch.equal(again[7][0], ood[7][0]) and not torch.equal(other[7][0], ood[7][0])


def test_all_offline_sets_at_once_and_rgb_noise(roots):
    dm = make("cifar10", roots, ood_classes=[0], extra_ood=["digits", "gaussian", "uniform", "constant"])
    assert list(dm.test_dataloader()) == [
        "id", "ood/held_out", "ood/digits", "ood/gaussian", "ood/uniform", "ood/constant",
    ]  # fmt: skip
    assert dm.ood_sets["ood/uniform"][0][0].shape == (3, 32, 32) and len(dm.ood_sets["ood/uniform"]) == 9


def test_noise_images_unit():
    ds = NoiseImages("gaussian", num_images=4, size=6, channels=3, seed=0)
    image, label = ds[2]
    assert image.mode == "RGB" and image.size == (6, 6) and label == -1
    np.testing.assert_array_equal(np.asarray(image), np.round(ds.pixels(2) * 255).astype(np.uint8))
    with pytest.raises(IndexError):
        ds[4]
    assert ResizedDigits(size=56, channels=3)[0][0].size == (56, 56)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ood_classes": [10]}, r"`ood_classes` to be labels in 0–9"),
        ({"ood_classes": list(range(9))}, "leaving at least 2 classes"),
        ({"ood_classes": [-1]}, r"`ood_classes` to be labels ≥ 0"),
        ({"ood_classes": ["shirt"]}, "`ood_classes` to be a list of integer labels"),
        ({"extra_ood": ["svhn"]}, r"`extra_ood` to be distinct names from \['digits', 'gaussian'"),
        ({"ood_folders": ["a/digits"]}, "`ood_folders` with distinct names"),
        ({"ood_dataset": "cifar"}, r"`ood_dataset` in \['default', 'mnist', 'cifar10'"),
        ({"kind": "pink"}, "`kind` in"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NoiseImages(kwargs.pop("kind"), 2, 4) if "kind" in kwargs else FashionMNISTDataModule(**kwargs)


def test_mnist_still_available_when_its_files_are_given(roots):
    dm = make("fashion_mnist", roots, ood_dataset="mnist", ood_root=roots["mnist"])
    assert list(dm.test_dataloader()) == ["id", "ood/mnist"] and len(dm.ood_sets["ood/mnist"]) == 20


def test_system_package_used_when_root_not_given(roots, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/ here
    install = torchvision_sets.SYSTEM_DATASET_DIRS["fashion_mnist"][1]
    monkeypatch.setitem(torchvision_sets.SYSTEM_DATASET_DIRS, "fashion_mnist", (roots["fashion"], install))
    dm = FashionMNISTDataModule(download=False, val_fraction=0.25)
    assert dm.root == roots["fashion"]
    dm.setup()
    assert len(dm.test_set) == 30 and len(dm.train_set) + len(dm.val_set) == 60
    # MNIST's partner Fashion-MNIST is found in the system directory when MNIST's root does not hold it.
    dm = MNISTDataModule(root=roots["mnist"], download=False, val_fraction=0.25)
    dm.setup("test")
    assert len(dm.ood_sets["ood/fashion_mnist"]) == 30


def test_missing_files_name_the_directory_and_the_install_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "no_package"
    install = torchvision_sets.SYSTEM_DATASET_DIRS["fashion_mnist"][1]
    monkeypatch.setitem(torchvision_sets.SYSTEM_DATASET_DIRS, "fashion_mnist", (empty, install))
    with pytest.raises(FileNotFoundError, match=r"`root`='data'.*apt-get update && apt-get install -y dataset-fashion"):
        FashionMNISTDataModule(download=False).setup()

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: Name or service not known")

    monkeypatch.setattr(torchvision_sets.TORCHVISION_SETS["fashion_mnist"].dataset_class, "download", offline)
    with pytest.raises(FileNotFoundError, match=r"`root`='data'.*dataset-fashion-mnist.*Name or service not known"):
        FashionMNISTDataModule(download=True).setup()
    with pytest.raises(FileNotFoundError, match=f"`root`='{tmp_path / 'mine'}'"):
        FashionMNISTDataModule(root=tmp_path / "mine", download=False).setup()


def test_damaged_file_in_a_data_module_names_the_file(tmp_path):
    idx_helpers.write_dataset(tmp_path, np.random.default_rng(5))
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:20])
    with pytest.raises(ValueError, match=str(bad)):
        FashionMNISTDataModule(root=tmp_path, download=False).setup("fit")


SYSTEM = torchvision_sets.SYSTEM_DATASET_DIRS["fashion_mnist"][0]


@pytest.mark.skipif(
    not (SYSTEM / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason=f"Debian's dataset-fashion-mnist is not installed (no files in {SYSTEM}); `make data` installs it",
)
def test_real_fashion_mnist_through_the_data_module():
    dm = FashionMNISTDataModule(ood_classes=[9], extra_ood=["gaussian"])  # root not given: the system package
    dm.setup()
    assert dm.root == SYSTEM and len(dm.train_set) + len(dm.val_set) == 54_000 and len(dm.test_set) == 9_000
    assert len(dm.ood_sets["ood/held_out"]) == 1_000 and len(dm.ood_sets["ood/gaussian"]) == 9_000
    assert dm.class_names[-1] == "Bag" and dm.test_set[0][0].shape == (1, 28, 28)


def test_digits_module_takes_the_offline_sets_too(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (30, 20), (80 * i, 10, 0)).save(folder / f"{i}.png")
    extra = {"extra_ood": ["uniform", "constant"], "ood_folders": [str(folder)]}
    dm = DigitsDataModule(ood_classes=(8, 9), image_size=16, **extra)
    dm.setup()
    loaders = dm.test_dataloader()
    assert list(loaders) == ["id", "ood", "ood/uniform", "ood/constant", "ood/pictures"]
    assert len(loaders["ood/uniform"].dataset) == len(dm.test_set) and len(loaders["ood/pictures"].dataset) == 3
    constant, label = loaders["ood/constant"].dataset[0]
    assert constant.shape == (1, 16, 16) and label == -1
    torch.testing.assert_close(constant, constant.flatten()[0].expand_as(constant))  # one level, prepared like digits
    uniform = torch.stack([image for image, _ in loaders["ood/uniform"].dataset]) * dm.std + dm.mean  # back to [0, 1]
    assert uniform.min() >= -1e-6 and uniform.max() <= 1 + 1e-6 and abs(uniform.mean() - 0.5) < 0.02
    with pytest.raises(ValueError, match="without 'digits'"):
        DigitsDataModule(extra_ood=["digits"])
