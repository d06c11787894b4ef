"""Checks and conversions of image files before they reach a batch: readable, one size, 16-bit pixels scaled.

* :func:`unreadable_reason` opens and verifies a file (headers and, for PNG, every chunk's checksum) without
  decoding the pixels, so a folder can be checked at ``setup`` and a bad file named before any work.
* :func:`check_same_size` reads only the headers: images of several sizes without a resize would otherwise fail
  mid-epoch inside ``torch.stack`` with a message that names neither a file nor ``image_size``.
* :func:`to_eight_bit` scales 16-bit greyscale images (PIL modes ``I;16*`` and ``I``) to 8 bits. PIL's own
  ``convert("L")`` clips them at 255, which turns nearly every pixel of a 16-bit image white.
* :func:`load_image` and :func:`list_images` read and find image files for every data module (here, below the
  data modules, so that the offline OOD sets can use them without importing a data module).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torchvision.datasets.folder import IMG_EXTENSIONS

__all__ = ["check_same_size", "list_images", "load_image", "to_eight_bit", "unreadable_reason"]

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def unreadable_reason(path: str | Path) -> str | None:
    """Why ``path`` is not a readable image (header and, for PNG, every chunk's checksum), or None if it is.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile(suffix=".png") as handle:
        ...     _ = handle.write(b"not an image")
        ...     handle.flush()
        ...     unreadable_reason(handle.name).split(":")[0]
        'UnidentifiedImageError'
    """
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as err:
        return f"{type(err).__name__}: {err}"
    return None


def check_same_size(paths: Sequence[str | Path], *, where: str) -> None:
    """Raise ``ValueError`` naming ``image_size`` and example files when the images are not all one size.

    Args:
        paths: the image files (only their headers are read).
        where: what holds them, for the message (e.g. "`test/` under root=data").

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> Image.new("L", (8, 8)).save(folder / "a.png"); Image.new("L", (9, 8)).save(folder / "b.png")
        >>> check_same_size([folder / "a.png", folder / "b.png"], where="the folder")
        Traceback (most recent call last):
        ...
        ValueError: Expected images of one size in the folder when `image_size` is None (no resize), got 2 sizes: ...
    """
    first: dict[tuple[int, int], str] = {}
    for path in paths:
        with Image.open(path) as image:
            first.setdefault(image.size, str(path))
        if len(first) > 1:
            break
    if len(first) > 1:
        examples = " and ".join(f"{w}×{h} ({path})" for (w, h), path in first.items())
        raise ValueError(
            f"Expected images of one size in {where} when `image_size` is None (no resize), got {len(first)} sizes: "
            f"{examples}; set `image_size` (or a timm data config) to resize them"
        )


def to_eight_bit(image: Any) -> Any:
    """A 16-bit greyscale PIL image as 8-bit ``"L"``, scaled by 255/65535 (rounded); other images unchanged.

    Mode ``"I"`` (32-bit integers, how PIL may open 16-bit PNGs) is taken as 16-bit; values outside [0, 65535]
    are clipped with a warning.

    Example:
        >>> image = Image.fromarray(np.array([[0, 257, 65535]], dtype=np.uint16))
        >>> image.mode, np.asarray(to_eight_bit(image)).tolist()
        ('I;16', [[0, 1, 255]])
    """
    if getattr(image, "mode", None) not in _SIXTEEN_BIT_MODES:
        return image
    values = np.asarray(image, dtype=np.float64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        warnings.warn(
            f"Clipped pixel values in [{values.min():.0f}, {values.max():.0f}] of a mode {image.mode!r} image to the "
            "16-bit range [0, 65535] before scaling to 8 bits",
            UserWarning,
            stacklevel=2,
        )
        values = values.clip(0, 65535)
    return Image.fromarray(np.round(values * (255 / 65535)).astype(np.uint8), "L")


def load_image(path: str) -> Any:
    """An image file as RGB (torchvision's ``pil_loader``), with an error that names the file (PIL's "image file is
    truncated" does not); 16-bit greyscale is scaled to 8 bits first
    (:func:`~ugmm_vision.data.image_files.to_eight_bit`), where PIL's RGB conversion would clip it to white."""
    try:
        with Image.open(path) as image:
            return to_eight_bit(image).convert("RGB")
    except Exception as err:
        raise OSError(f"Could not read the image file {path}: {type(err).__name__}: {err}") from err


def list_images(root: str | Path, recursive: bool = False) -> list[Path]:
    """Image files (torchvision's extensions, any case) in ``root``, sorted; sub-folders too if ``recursive``.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in ("b.PNG", "a.jpg", "notes.txt"):
        ...     (folder / name).touch()
        >>> [p.name for p in list_images(folder)]
        ['a.jpg', 'b.PNG']
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Expected `root` to be a folder of images, got {str(root)!r}")
    files = root.rglob("*") if recursive else root.iterdir()
    return sorted(p for p in files if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)
