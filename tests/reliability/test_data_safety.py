"""Bad data on disk: missing or empty folders, corrupt image files, missing dataset files.

Decision for corrupt images in an image folder: every file is opened and verified at ``setup`` (before training);
unreadable ones are an error that counts and names them (``bad_images="raise"``, the default), or are left out with
a warning giving their count (``bad_images="skip"``). A file that passes the header check but fails to decode later
raises an ``OSError`` naming the file.
"""

import warnings

import pytest
from PIL import Image

from ugmm_vision.data import CIFAR10DataModule, ImageFolderDataModule, MNISTDataModule
from ugmm_vision.data.image_folder import load_image
from ugmm_vision.data.torchvision_sets import DatasetFilesError

CLASSES = ("ant", "bee")


def write_tree(root, per_class=4, splits=("train", "test"), size=(10, 10)):
    for split in splits:
        for label, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.new("RGB", size, (100 * label, 20 * i, 50)).save(root / split / name / f"{i}.png")
    return root


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_missing_root_folder(tmp_path):
    """A root folder that does not exist → FileNotFoundError naming `root`."""
    with pytest.raises(FileNotFoundError, match="Expected `root` to be a folder holding train/ and test/"):
        ImageFolderDataModule(tmp_path / "nowhere").setup("fit")


def test_empty_train_folder(tmp_path):
    """An empty `train/` (no class folders) → FileNotFoundError saying it is empty, naming `train/`."""
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match=r"class sub-folders in `train/` under root=.*the folder is empty"):
        ImageFolderDataModule(tmp_path).setup("fit")


def test_class_folder_without_images(tmp_path):
    """A class folder holding no image files → FileNotFoundError naming the split and the empty class."""
    write_tree(tmp_path)
    for image in (tmp_path / "train" / "bee").iterdir():
        image.unlink()
    (tmp_path / "train" / "bee" / "notes.txt").write_text("not an image")
    with pytest.raises(FileNotFoundError, match=r"image files in every class folder of `train/`.*bee"):
        ImageFolderDataModule(tmp_path, image_size=8).setup("fit")


@pytest.mark.parametrize("damage", ["text-as-png", "truncated-png", "empty-file"])
def test_corrupt_image_is_an_error_naming_it(tmp_path, damage):
    """A text file named .png, a truncated PNG or an empty file → ValueError at setup counting and naming it."""
    write_tree(tmp_path)
    bad = tmp_path / "train" / "ant" / "2.png"
    if damage == "text-as-png":
        bad.write_text("hello")
    elif damage == "truncated-png":
        truncate(bad)
    else:
        bad.write_bytes(b"")
    dm = ImageFolderDataModule(tmp_path, image_size=8, val_fraction=0.25)
    match = r"readable image files in `train/`.*got 1 unreadable file\(s\), e\.g\. .*2\.png"
    with pytest.raises(ValueError, match=match) as err:
        dm.setup("fit")
    assert "`bad_images`='skip'" in str(err.value)


def test_corrupt_images_skipped_with_a_count(tmp_path):
    """bad_images="skip" with 2 corrupt training files and 1 corrupt test file → left out, warnings count them."""
    write_tree(tmp_path)
    truncate(tmp_path / "train" / "ant" / "0.png")
    (tmp_path / "train" / "bee" / "3.png").write_text("junk")
    (tmp_path / "test" / "bee" / "1.png").write_bytes(b"\x89PNG\r\n")
    dm = ImageFolderDataModule(tmp_path, image_size=8, val_fraction=0.25, bad_images="skip")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.setup(None)
    messages = [str(w.message) for w in caught if "unreadable image file" in str(w.message)]
    assert len(messages) == 2
    assert messages[0].startswith("Skipped 2 unreadable image file(s) in `train/`")
    assert messages[1].startswith("Skipped 1 unreadable image file(s) in `test/`")
    assert dm.skipped_images == {"train": 2, "test": 1}
    assert len(dm.train_set) + len(dm.val_set) == 6 and len(dm.test_set) == 7
    for dataset in (dm.train_set, dm.val_set, dm.test_set):  # every remaining sample loads
        assert all(dataset[i][0].shape == (3, 8, 8) for i in range(len(dataset)))


def test_image_failing_only_at_decode_names_the_file(tmp_path):
    """A JPEG truncated inside its pixel data passes the header check → OSError naming the file when loaded."""
    path = tmp_path / "photo.jpg"
    Image.effect_noise((32, 32), 60).convert("RGB").save(path)
    truncate(path, keep=0.6)
    with pytest.raises(OSError, match=r"Could not read the image file .*photo\.jpg: OSError: image file is truncated"):
        load_image(str(path))


def test_unchecked_mode_does_not_open_files(tmp_path):
    """bad_images="unchecked" → no scan at setup (for huge folders); the bad file fails only when loaded."""
    write_tree(tmp_path)
    (tmp_path / "test" / "ant" / "0.png").write_text("junk")
    dm = ImageFolderDataModule(tmp_path, image_size=8, bad_images="unchecked")
    dm.setup("test")
    with pytest.raises(OSError, match=r"Could not read the image file .*0\.png"):
        dm.test_set[0]


@pytest.mark.parametrize("module", [MNISTDataModule, CIFAR10DataModule], ids=["mnist", "cifar10"])
def test_missing_torchvision_files_without_download(tmp_path, module):
    """download=False and no dataset files under root → FileNotFoundError naming `root` (a DatasetFilesError, still
    the RuntimeError torchvision raises, for code that caught that)."""
    with pytest.raises(FileNotFoundError, match=r"files under `root`=.* in torchvision's layout") as err:
        module(root=tmp_path, download=False).setup("fit")
    assert isinstance(err.value, DatasetFilesError) and isinstance(err.value, RuntimeError)
