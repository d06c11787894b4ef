"""Checks of the image batches a model receives: shape and dtype against what the backbone declares, finite values.

A backbone declares what it accepts through optional attributes: ``in_chans`` (images are (B, in_chans, H, W)),
``image_size`` (H and W must equal it: an int for square images, or an (H, W) pair) and ``min_size`` (H and W must
be at least it). A backbone that declares none of them (e.g. one over cached feature vectors) only gets the dtype
and finiteness checks.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["BadBatch", "BatchGuard", "as_model_dtype", "check_image_batch", "count_nonfinite_samples"]

BadBatch = Literal["raise", "skip"]


def _as_pair(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def check_image_batch(images: object, backbone: nn.Module) -> None:
    """Raise ``ValueError`` naming ``images`` if the batch cannot be what ``backbone`` takes.

    Metadata only (rank, channels, size, dtype): no pass over the values, so it costs nothing per batch. Finite
    values are checked separately (:func:`count_nonfinite_samples`), once per batch.

    Args:
        images: the batch's input tensor.
        backbone: the feature extractor it is for; its ``in_chans``, ``image_size`` and ``min_size`` attributes
            are checked where present.

    Example:
        >>> import torch
        >>> from ugmm_vision.backbones import SmallCNN
        >>> check_image_batch(torch.zeros(2, 1, 8, 8), SmallCNN(in_chans=1))
        >>> check_image_batch(torch.zeros(2, 3, 8, 8), SmallCNN(in_chans=1))
        Traceback (most recent call last):
        ...
        ValueError: Expected `images` with 1 channel(s) as the backbone's in_chans=1, got shape (2, 3, 8, 8)
    """
    if not isinstance(images, Tensor):
        raise ValueError(f"Expected `images` to be a tensor, got {type(images).__name__}")
    if not images.is_floating_point():
        raise ValueError(
            f"Expected `images` to be a floating-point tensor, got dtype {images.dtype} "
            "(convert integer pixels with torchvision's v2.ToDtype(torch.float32, scale=True) and normalise them)"
        )
    in_chans = getattr(backbone, "in_chans", None)
    if not isinstance(in_chans, int):
        if images.dim() < 2:
            raise ValueError(f"Expected `images` batched as (B, ...), got shape {tuple(images.shape)}")
        return
    if images.dim() != 4:
        raise ValueError(f"Expected `images` of shape (B, {in_chans}, H, W), got shape {tuple(images.shape)}")
    if images.shape[1] != in_chans:
        raise ValueError(
            f"Expected `images` with {in_chans} channel(s) as the backbone's in_chans={in_chans}, "
            f"got shape {tuple(images.shape)}"
        )
    height_width = tuple(images.shape[-2:])
    image_size = getattr(backbone, "image_size", None)
    if isinstance(image_size, (int, tuple, list)) and height_width != _as_pair(image_size):
        raise ValueError(
            f"Expected `images` of {_as_pair(image_size)[0]}×{_as_pair(image_size)[1]} pixels as the backbone's "
            f"image_size={image_size}, got {height_width[0]}×{height_width[1]}"
        )
    min_size = getattr(backbone, "min_size", None)
    if isinstance(min_size, int) and min(height_width) < min_size:
        raise ValueError(
            f"Expected `images` at least {min_size}×{min_size} pixels for the backbone, "
            f"got {height_width[0]}×{height_width[1]}"
        )


def count_nonfinite_samples(images: Tensor) -> int:
    """Number of samples (rows along dim 0) holding at least one NaN or ±Inf.

    One reduction over the batch on the fast path (all finite); the per-sample count only when something is not.

    Example:
        >>> import torch
        >>> count_nonfinite_samples(torch.tensor([[0.0, 1.0], [float("nan"), 2.0], [float("inf"), 0.0]]))
        2
    """
    finite = images.isfinite()
    if bool(finite.all()):
        return 0
    return int((~finite).reshape(images.shape[0], -1).any(dim=1).sum())  # (B, ·) -> (B,) -> count


def as_model_dtype(images: Tensor, module: nn.Module) -> Tensor:
    """Floating ``images`` in the dtype of ``module``'s floating parameters (float64 or float16 pixels into a
    float32 model); anything else unchanged.

    A backbone's first convolution otherwise fails with "Input type (double) and bias type (float) should be the
    same", naming neither the images nor the fix. Values that do not fit the narrower dtype are an error, not Inf.

    Example:
        >>> as_model_dtype(torch.zeros(1, 2, dtype=torch.float64), nn.Linear(2, 1)).dtype
        torch.float32
        >>> as_model_dtype(torch.full((1, 2), 1e300, dtype=torch.float64), nn.Linear(2, 1))
        Traceback (most recent call last):
        ...
        ValueError: Expected `images` with values that fit the model's torch.float32, got values up to 1e+300 ...
    """
    if not isinstance(images, Tensor) or not images.is_floating_point():
        return images
    dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()), images.dtype)
    if images.dtype == dtype:
        return images
    cast = images.to(dtype)
    if torch.finfo(dtype).max < torch.finfo(images.dtype).max and not bool(cast.isfinite().all()):
        if bool(images.isfinite().all()):
            raise ValueError(
                f"Expected `images` with values that fit the model's {dtype}, got values up to "
                f"{images.abs().max().item():.3g} in {images.dtype}; normalise the images"
            )
    return cast


class BatchGuard:
    """Checks every batch a model receives, and skips training batches with NaN or Inf pixels when asked to.

    Args:
        backbone: the feature extractor the images are for (:func:`check_image_batch`).
        bad_batch: what a training batch whose images hold NaN or Inf gets: ``"raise"`` — a ``ValueError``
            naming ``images``; ``"skip"`` — a warning with the count of skipped batches (:attr:`skipped`).
            Evaluation batches always raise, so that a report covers its whole set.

    Example:
        >>> guard = BatchGuard(nn.Identity(), "skip")
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     guard.check(torch.zeros(2, 3), "training"), guard.check(torch.full((2, 3), float("nan")), "training")
        (True, False)
        >>> guard.skipped
        1
    """

    def __init__(self, backbone: nn.Module, bad_batch: BadBatch) -> None:
        if bad_batch not in ("raise", "skip"):
            raise ValueError(f"Expected `bad_batch` to be 'raise' or 'skip', got {bad_batch!r}")
        self.backbone = backbone
        self.bad_batch = bad_batch
        self.skipped = 0

    def check_world_size(self, world_size: int) -> None:
        """Refuse ``"skip"`` on several processes: a batch skipped by one would leave the others waiting."""
        if self.bad_batch == "skip" and world_size > 1:
            raise ValueError(
                "Expected `bad_batch`='raise' when training on several processes (a batch skipped by one process "
                f"would leave the others waiting), got 'skip' with world_size={world_size}"
            )

    def check(self, images: Tensor, stage: str) -> bool:
        """Check a batch's images; False means "skip this batch" (training with ``bad_batch="skip"`` only).

        Raises:
            ValueError: naming ``images`` — wrong rank, channels, size or dtype for the backbone, or NaN/Inf
                values (outside training, or with ``bad_batch="raise"``).
        """
        check_image_batch(images, self.backbone)
        n_bad = count_nonfinite_samples(images)
        if n_bad == 0:
            return True
        what = f"{n_bad} of {images.shape[0]} images of this {stage} batch hold NaN or Inf"
        if stage == "training" and self.bad_batch == "skip":
            self.skipped += 1
            warnings.warn(
                f"Skipped a training batch: {what} (bad_batch='skip'); {self.skipped} batch(es) skipped so far",
                UserWarning,
                stacklevel=3,
            )
            return False
        raise ValueError(
            f"Expected `images` with finite values, got {what}; check the data and its normalisation"
            + (" (or pass bad_batch='skip' to skip such training batches)" if stage == "training" else "")
        )
