"""``ImageFolderDataModule`` on tiny PNG trees written by the tests."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ugmm_vision.cli import build_cli
from ugmm_vision.data import ImageFolderDataModule

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CLASSES = ["ant", "bee", "cow"]
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def colour(label, i):
    """A solid RGB colour that encodes the class and the image's number."""
    return (40 * label + 10, 20 * i, 200)


def write_tree(root, splits=(("train", 6), ("test", 2)), classes=CLASSES, ood=0, size=(12, 10)):
    for split, per_class in splits:
        for label, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", size, colour(label, i)).save(root / split / name / f"{i}.png")
    if ood:
        (root / "ood" / "unknown").mkdir(parents=True)
        for i in range(ood):
            Image.new("L", (7, 7), 30 * i).save(root / "ood" / "unknown" / f"{i}.png")
    return root


def pixel(image, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """De-normalise the top-left pixel back to 0–255."""
    return [round(float(image[c, 0, 0] * std[c] + mean[c]) * 255) for c in range(image.shape[0])]


def test_split_from_train_sizes_labels_and_normalisation(tmp_path):
    dm = ImageFolderDataModule(write_tree(tmp_path, ood=3), image_size=8, val_fraction=1 / 3, batch_size=4)
    assert dm.class_names == CLASSES and dm.num_classes == 3
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (12, 6, 6)
    assert not set(dm.train_set.indices) & set(dm.val_set.indices)
    val_labels = [label for _, label in dm.val_set]
    assert np.bincount(val_labels).tolist() == [2, 2, 2]  # stratified
    for dataset in (dm.train_set, dm.val_set, dm.test_set):
        for image, label in list(dataset)[:4]:
            assert image.shape == (3, 8, 8)
            assert pixel(image)[0] == colour(label, 0)[0] and pixel(image)[2] == 200  # ImageNet normalisation
    assert list(dm.test_dataloader()) == ["id", "ood"]
    ood_images, _ = next(iter(dm.test_dataloader()["ood"]))
    assert ood_images.shape == (3, 3, 8, 8)  # grey 7×7 → RGB 8×8
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (4, 3, 8, 8) and labels.dtype == torch.long


def test_split_is_deterministic_and_depends_on_seed(tmp_path):
    root = write_tree(tmp_path)
    indices = []
    for seed in (0, 0, 1):
        dm = ImageFolderDataModule(root, image_size=8, val_fraction=0.5, seed=seed)
        dm.setup("fit")
        indices.append(dm.val_set.indices)
    assert indices[0] == indices[1] and indices[0] != indices[2]


def test_val_folder_is_used_when_present(tmp_path):
    root = write_tree(tmp_path, splits=(("train", 4), ("val", 1), ("test", 2)))
    dm = ImageFolderDataModule(root, image_size=6)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (12, 3, 6)
    assert sorted(label for _, label in dm.val_set) == [0, 1, 2]
    assert list(dm.test_dataloader()) == ["id"]


def test_stages_load_their_part_and_loaders_fill_in(tmp_path):
    dm = ImageFolderDataModule(write_tree(tmp_path), image_size=8)
    dm.setup("test")
    assert dm.test_set is not None and dm.train_set is None
    assert len(dm.val_dataloader().dataset) == 2  # e.g. temperature scaling after setup("test")
    assert dm.train_set is not None


def test_grey_and_stored_size(tmp_path):
    dm = ImageFolderDataModule(write_tree(tmp_path), num_channels=1, mean=(0.5,), std=(0.5,))
    dm.setup("test")
    image, label = dm.test_set[0]
    assert image.shape == (1, 10, 12)  # stored size kept without image_size
    r, g, b = colour(label, 0)
    assert round(float(image[0, 0, 0] * 0.5 + 0.5) * 255) == round(0.299 * r + 0.587 * g + 0.114 * b)  # PIL's luma


def test_timm_config_and_shift(tmp_path):
    config = {"input_size": (3, 16, 16), "interpolation": "bicubic", "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    dm = ImageFolderDataModule(write_tree(tmp_path), timm_data_config=config)
    dm.setup()
    assert dm.test_set[0][0].shape == (3, 16, 16) and dm.train_set[0][0].shape == (3, 16, 16)
    loaders = dm.shift_dataloaders(["pixelate"], severities=(5,))
    shifted, _ = next(iter(loaders["shift/pixelate/5"]))
    assert shifted.shape[1:] == (3, 16, 16)


def test_bad_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="`train/`"):
        ImageFolderDataModule(tmp_path).num_classes  # noqa: B018
    root = write_tree(tmp_path / "a", splits=(("train", 2),))
    write_tree(root, splits=(("test", 1),), classes=["ant", "bee"])
    dm = ImageFolderDataModule(root, image_size=8, val_fraction=0.5)
    with pytest.raises(ValueError, match=r"class folders of `test/`"):
        dm.setup("test")


def test_config_override(tmp_path, monkeypatch):
    root = write_tree(tmp_path / "images", splits=(("train", 4), ("test", 2)), ood=2)
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", str(CONFIGS / "digits.yaml"), "--config", str(CONFIGS / "image_folder.yaml")]
    cli = build_cli(
        [*args, f"--data.init_args.root={root}", "--data.init_args.batch_size=4", "--trainer.fast_dev_run=true"]
    )
    assert type(cli.datamodule) is ImageFolderDataModule and cli.model.num_classes == 3
    assert cli.model.backbone.in_chans == 3 and cli.datamodule.image_size == 32
    assert cli.trainer.state.finished and "train/loss" in cli.trainer.logged_metrics
    assert Path(cli.trainer.checkpoint_callbacks[0].dirpath) == tmp_path / "outputs/image_folder/checkpoints"
