"""Out-of-distribution sets that exist offline: resized scikit-learn digits, image folders, synthetic noise.

Every set here is a dataset of ``(PIL image, label)`` like the raw splits of
:class:`~ugmm_vision.data.VisionDataModule`, which passes them through the in-distribution evaluation transform
(so they are normalised like the test set) and serves them as ``"ood/<name>"``:

* ``"digits"`` — :class:`ResizedDigits`: scikit-learn's 1,797 real 8×8 handwritten digits, upsampled into the
  in-distribution image size and channels with MNIST's proportions (a 20-pixel digit centred in 28 pixels). A
  near-OOD partner for grey 28×28 data that needs no download. It is **not MNIST**: other writers, 8×8 source
  resolution, so blurrier strokes.
* ``"gaussian"``, ``"uniform"``, ``"constant"`` — :class:`NoiseImages`: seeded far-OOD images (Gaussian pixels
  around mid-grey, uniform pixels, one uniform random grey level or colour per image), as many as the test set.
* any folder — :func:`image_folder_ood`: ``ImageFolder`` layout (class sub-folders) or a flat folder of images.

The labels of OOD sets are never classes of the model: digits keep their digit, noise and flat folders give -1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder

from ugmm_vision.checks import check_positive_int, is_int
from ugmm_vision.data.image_files import list_images, load_image

__all__ = [
    "NOISE_KINDS",
    "OFFLINE_OOD_SETS",
    "FlatImageFolder",
    "NoiseImages",
    "ResizedDigits",
    "check_ood_arguments",
    "image_folder_ood",
    "offline_ood_sets",
]

NOISE_KINDS = ("gaussian", "uniform", "constant")
"""The synthetic far-OOD sets."""

OFFLINE_OOD_SETS = ("digits", *NOISE_KINDS)
"""The names an ``ood_sets`` argument accepts (besides folders)."""

_GAUSSIAN_MEAN, _GAUSSIAN_STD = 0.5, 0.25  # in [0, 1] pixel units, clipped: most mass inside the pixel range
_MNIST_BOX = 20 / 28  # MNIST centres each digit's 20×20 box in a 28×28 image


def _check_image_args(size: int, channels: int) -> None:
    check_positive_int("size", size)
    if channels not in (1, 3):
        raise ValueError(f"Expected `channels` in {{1, 3}}, got {channels!r}")


def _to_pil(pixels: np.ndarray) -> Any:
    """uint8 (H, W, C) with C = 1 or 3 → a PIL image in mode ``"L"`` or ``"RGB"``."""
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


class NoiseImages(Dataset):
    """Seeded synthetic images: ``"gaussian"``, ``"uniform"`` or ``"constant"``.

    Image ``i`` is drawn from ``numpy.random.default_rng([seed, i])``, so it is the same whatever the order of
    access and however many images there are; nothing is stored. Pixels are in [0, 1] before 8-bit quantisation:
    Gaussian N(0.5, 0.25²) clipped, uniform U(0, 1), or one U(0, 1) value per channel over the whole image.

    Args:
        kind: ``"gaussian"``, ``"uniform"`` or ``"constant"``.
        num_images: number of images (the in-distribution test set's size, as the data modules use it).
        size: side length.
        channels: 1 (grey) or 3 (RGB).
        seed: base seed.

    Example:
        >>> ds = NoiseImages("constant", num_images=3, size=4, channels=3, seed=0)
        >>> image, label = ds[1]
        >>> len(ds), image.mode, image.size, label, len(np.unique(np.asarray(image).reshape(-1, 3), axis=0))
        (3, 'RGB', (4, 4), -1, 1)
    """

    def __init__(self, kind: str, num_images: int, size: int, channels: int = 1, seed: int = 0) -> None:
        if kind not in NOISE_KINDS:
            raise ValueError(f"Expected `kind` in {list(NOISE_KINDS)}, got {kind!r}")
        check_positive_int("num_images", num_images)
        _check_image_args(size, channels)
        self.kind, self.num_images, self.size, self.channels, self.seed = kind, num_images, size, channels, seed

    def __len__(self) -> int:
        return self.num_images

    def pixels(self, index: int) -> np.ndarray:
        """Image ``index`` as float64 (size, size, channels) in [0, 1], before quantisation."""
        if not 0 <= index < self.num_images:
            raise IndexError(f"Expected an index in [0, {self.num_images}), got {index}")
        rng = np.random.default_rng([self.seed, index])
        shape = (self.size, self.size, self.channels)
        if self.kind == "gaussian":
            return np.clip(rng.normal(_GAUSSIAN_MEAN, _GAUSSIAN_STD, size=shape), 0.0, 1.0)
        if self.kind == "uniform":
            return rng.uniform(0.0, 1.0, size=shape)
        return np.broadcast_to(rng.uniform(0.0, 1.0, size=(1, 1, self.channels)), shape)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        return _to_pil(np.round(self.pixels(index) * 255).astype(np.uint8)), -1


class ResizedDigits(Dataset):
    """scikit-learn's 1,797 real 8×8 handwritten digits, resized into ``size``×``size`` images (not MNIST).

    Each digit (4-bit grey, scaled to 0–255) is resized bilinearly to MNIST's digit box — ``round(20/28·size)``
    pixels — and centred on a black ``size``×``size`` canvas; grey is repeated for ``channels=3``. Labels are the
    digits 0–9 (not classes of the in-distribution model).

    Args:
        size: side length of the images (e.g. 28 for Fashion-MNIST).
        channels: 1 (grey) or 3 (RGB).

    Example:
        >>> ds = ResizedDigits(size=28)
        >>> image, label = ds[0]
        >>> len(ds), image.mode, image.size, label, image.getpixel((0, 0))
        (1797, 'L', (28, 28), 0, 0)
    """

    def __init__(self, size: int = 28, channels: int = 1) -> None:
        _check_image_args(size, channels)
        digits = load_digits()
        self.size, self.channels = size, channels
        self.data = np.round(digits.images * (255 / 16)).astype(np.uint8)  # (1797, 8, 8), 4-bit → 8-bit
        self.targets = np.asarray(digits.target, dtype=np.int64)
        self.box = max(1, round(_MNIST_BOX * size))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        digit = Image.fromarray(self.data[index]).resize((self.box, self.box), Image.Resampling.BILINEAR)
        canvas = Image.new("L", (self.size, self.size), 0)
        offset = (self.size - self.box) // 2
        canvas.paste(digit, (offset, offset))
        return (canvas.convert("RGB") if self.channels == 3 else canvas), int(self.targets[index])


class FlatImageFolder(Dataset):
    """The image files of one folder (not its sub-folders), sorted by name, each with label -1.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> Image.new("RGB", (5, 5)).save(folder / "a.png")
        >>> ds = FlatImageFolder(folder)
        >>> len(ds), ds[0][0].size, ds[0][1]
        (1, (5, 5), -1)
    """

    def __init__(self, root: str | Path) -> None:

        self.root = Path(root)
        self.paths = list_images(self.root)
        if not self.paths:
            raise FileNotFoundError(f"Expected image files in the OOD folder {self.root}, found none")
        self.targets = np.full(len(self.paths), -1, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Any, int]:

        return load_image(str(self.paths[index])), -1


def image_folder_ood(root: str | Path) -> Dataset:
    """An OOD set from a folder: ``ImageFolder`` layout when it has sub-folders of images, else a flat folder.

    Unreadable images raise an ``OSError`` naming the file when loaded.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "cats").mkdir()
        >>> Image.new("L", (6, 6)).save(folder / "cats" / "x.png")
        >>> ds = image_folder_ood(folder)
        >>> type(ds).__name__, len(ds)
        ('ImageFolder', 1)
    """

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Expected `ood_folders` to name existing folders, got {str(root)!r}")
    if any(path.is_dir() and list_images(path) for path in root.iterdir()):
        return ImageFolder(str(root), loader=load_image, allow_empty=True)
    return FlatImageFolder(root)


def check_ood_arguments(
    ood_classes: Sequence[int], extra_ood: Sequence[str], ood_folders: Sequence[str | Path]
) -> tuple[tuple[int, ...], tuple[str, ...], tuple[Path, ...]]:
    """Check the OOD-set arguments of a data module; returns them as sorted/ordered tuples.

    Example:
        >>> check_ood_arguments([9, 5], ["gaussian"], [])
        ((5, 9), ('gaussian',), ())
    """
    if isinstance(ood_classes, (str, int)) or not all(map(is_int, ood_classes)):
        raise ValueError(f"Expected `ood_classes` to be a list of integer labels, got {ood_classes!r}")
    classes = tuple(sorted(set(ood_classes)))
    if classes and classes[0] < 0:
        raise ValueError(f"Expected `ood_classes` to be labels ≥ 0, got {list(classes)}")
    extra = (extra_ood,) if isinstance(extra_ood, str) else tuple(extra_ood)
    unknown = [n for n in extra if n not in OFFLINE_OOD_SETS]
    if unknown or len(set(extra)) != len(extra):
        raise ValueError(f"Expected `extra_ood` to be distinct names from {list(OFFLINE_OOD_SETS)}, got {list(extra)}")
    folders = (Path(ood_folders),) if isinstance(ood_folders, (str, Path)) else tuple(Path(f) for f in ood_folders)
    names = [f.name for f in folders]
    clash = [n for n in names if names.count(n) > 1 or n in (*OFFLINE_OOD_SETS, "held_out")]
    if clash:
        raise ValueError(f"Expected `ood_folders` with distinct names, not an OOD set's name, got clashes {clash}")
    return classes, extra, folders


def offline_ood_sets(
    extra_ood: Sequence[str],
    ood_folders: Sequence[str | Path],
    size: int,
    channels: int,
    num_images: int,
    seed: int = 0,
) -> dict[str, Dataset]:
    """The offline OOD sets named in ``extra_ood`` and one per folder, keyed ``"ood/<name>"``.

    Args:
        extra_ood: names from :data:`OFFLINE_OOD_SETS`.
        ood_folders: folders of images (each named by its last path component).
        size: the in-distribution side length (digits and noise are made at it).
        channels: the in-distribution channels.
        num_images: images per noise set (the in-distribution test set's size).
        seed: seed of the noise sets.

    Example:
        >>> sets = offline_ood_sets(["digits", "uniform"], [], size=28, channels=1, num_images=10)
        >>> {name: (len(ds), ds[0][0].size) for name, ds in sets.items()}
        {'ood/digits': (1797, (28, 28)), 'ood/uniform': (10, (28, 28))}
    """
    sets: dict[str, Dataset] = {}
    for name in extra_ood:
        sets[f"ood/{name}"] = (
            ResizedDigits(size, channels) if name == "digits" else NoiseImages(name, num_images, size, channels, seed)
        )
    for folder in ood_folders:
        sets[f"ood/{Path(folder).name}"] = image_folder_ood(folder)
    return sets
