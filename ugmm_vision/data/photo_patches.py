"""A folder of natural-image patches that exists offline: random crops of scikit-learn's two sample photos.

scikit-learn ships two real photographs (``load_sample_images``: a Chinese temple and a flower, 427×640). Random
crops of them, resized to a small square, make a natural-image OOD folder for grey or colour 28–32 px data
without any download — a far-OOD partner served through ``ood_folders`` like any image folder.

Command line (what ``make fashion-mnist`` runs)::

    python -m ugmm_vision.data.photo_patches data/ood/photo_patches --num-images 1000 --size 28
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images

from ugmm_vision.checks import check_positive_int

__all__ = ["main", "write_photo_patches"]


def write_photo_patches(folder: str | Path, num_images: int = 1000, size: int = 28, seed: int = 0) -> list[Path]:
    """Write ``num_images`` seeded random square crops (side 32–200 px) of the sample photos, resized to ``size``.

    Files are ``patch_00000.png`` …; existing files of those names are overwritten, others are left alone.

    Args:
        folder: where to write (created if missing).
        num_images: number of patches.
        size: side length of the saved RGB images.
        seed: seed of the crop positions and sizes.

    Returns:
        The written paths, in order.

    Example:
        >>> import tempfile
        >>> paths = write_photo_patches(tempfile.mkdtemp(), num_images=3, size=8)
        >>> [p.name for p in paths], Image.open(paths[0]).size
        (['patch_00000.png', 'patch_00001.png', 'patch_00002.png'], (8, 8))
    """
    for name, value in (("num_images", num_images), ("size", size)):
        check_positive_int(name, value)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    photos = load_sample_images().images  # two uint8 (427, 640, 3) arrays
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(num_images):
        photo = photos[i % len(photos)]
        side = int(rng.integers(32, 201))
        top = int(rng.integers(0, photo.shape[0] - side + 1))
        left = int(rng.integers(0, photo.shape[1] - side + 1))
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        path = folder / f"patch_{i:05d}.png"
        crop.resize((size, size), Image.Resampling.BILINEAR).save(path)
        paths.append(path)
    return paths


def main(args: list[str] | None = None) -> None:
    """Command line: ``python -m ugmm_vision.data.photo_patches FOLDER [--num-images N] [--size S] [--seed K]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="where to write the PNG files")
    parser.add_argument("--num-images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--seed", type=int, default=0)
    ns = parser.parse_args(args)
    paths = write_photo_patches(ns.folder, ns.num_images, ns.size, ns.seed)
    print(f"Wrote {len(paths)} patches of {ns.size}×{ns.size} px to {ns.folder}")


if __name__ == "__main__":
    main()
