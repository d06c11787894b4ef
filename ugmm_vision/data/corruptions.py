"""Distribution-shift corruptions at severities 1–5, applied on the fly to float images in [0, 1].

The severities follow Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations" (ICLR 2019), using their CIFAR-10-C table (``make_cifar_c.py``) — the one designed for 32-pixel
images, so it suits tiny images (8×8 digits, 28×28 MNIST, 32×32 CIFAR/SVHN) better than the ImageNet-C table.

=================  ===================================  ===================================  ======================
corruption         parameter                            severities 1–5                       ImageNet-C (224 px)
=================  ===================================  ===================================  ======================
gaussian_noise     noise std (pixel values in [0, 1])   0.04, 0.06, 0.08, 0.09, 0.10         0.08 … 0.38
gaussian_blur      σ in pixels × max(1, side / 32)      0.4, 0.6, 0.7, 0.8, 1.0              1, 2, 3, 4, 6
contrast           contrast factor                      0.75, 0.5, 0.4, 0.3, 0.15            0.4 … 0.05
pixelate           block side in pixels × max(1, s/32)  2, 3, 4, 5, 6                        1.7 … 4 (0.6 … 0.25)
jpeg               JPEG quality                         80, 65, 58, 50, 40                   25 … 7
rotation           degrees, random sign per image       15, 30, 45, 60, 90                   (not in the benchmark)
=================  ===================================  ===================================  ======================

Scaling for image size: noise, contrast and JPEG are size-free. The blur σ and the pixelate block side are in
pixels of a 32-pixel image and grow linearly for larger images (a CIFAR image upsampled to 224 for a timm backbone
gets σ × 7, which lands on ImageNet-C's range), never below the 32-pixel value (on 8×8 digits σ = 1 is already
severe); a block is at most half the image side.

Differences from the reference code:

* contrast blends towards the mean *grey level* (torchvision's ``adjust_contrast``) instead of each channel's
  mean — identical for one channel;
* pixelate averages aligned k×k blocks instead of resizing to a fraction of the side (0.95 … 0.65 in CIFAR-10-C):
  fractional factors misalign the blocks, so on 8–32 pixel images the distortion is not monotone in severity
  (measured on real digits at 32 px, even with PIL's BOX filter, severity 3 distorts less than severity 2), and
  30 of 32 pixels is hardly a shift; the block sides follow ImageNet-C's factors, one step harsher at the top;
* rotation (bilinear, corners filled with 0) is not part of CIFAR-10-C; it is added for digit data.

Every function takes ``(images, severity, generator=None)``; images are float tensors of shape (C, H, W) or
(B, C, H, W) in [0, 1], and so is the output. Randomness comes only from ``generator`` (a CPU
``torch.Generator``), so a seeded generator reproduces the corruption exactly.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch import Tensor
from torchvision.transforms import InterpolationMode

from ugmm_vision.checks import is_int

__all__ = [
    "CORRUPTIONS",
    "SEVERITY_PARAMS",
    "check_severity",
    "contrast",
    "corrupt",
    "gaussian_blur",
    "gaussian_noise",
    "is_severity",
    "jpeg",
    "pixelate",
    "rotation",
]

SEVERITY_PARAMS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "pixelate": (2, 3, 4, 5, 6),
    "jpeg": (80, 65, 58, 50, 40),
    "rotation": (15, 30, 45, 60, 90),
}
"""The parameter of each corruption at severities 1–5 (see the module docstring for units)."""

_REFERENCE_SIDE = 32  # the image side the CIFAR-10-C pixel parameters were chosen for


def is_severity(value: object) -> bool:
    """Whether ``value`` is a corruption severity: an ``int`` (not a ``bool``) in 1–5."""
    return is_int(value) and 1 <= value <= 5  # type: ignore[operator]


def check_severity(severity: object) -> int:
    """Return ``severity`` if it is a corruption severity (:func:`is_severity`), else raise naming it."""
    if not is_severity(severity):
        raise ValueError(f"Expected `severity` in 1–5, got {severity!r}")
    return severity  # type: ignore[return-value]


def _as_batch(images: Tensor) -> tuple[Tensor, bool]:
    """Validate ``images`` and return them as (B, C, H, W) with a flag saying whether a batch dim was added."""
    if not isinstance(images, Tensor) or not images.is_floating_point():
        raise ValueError(f"Expected `images` to be a float tensor, got {getattr(images, 'dtype', type(images))}")
    if images.dim() not in (3, 4):
        raise ValueError(f"Expected `images` of shape (C, H, W) or (B, C, H, W), got {tuple(images.shape)}")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError(
            f"Expected `images` in [0, 1], got values in [{images.min().item():.3g}, {images.max().item():.3g}]"
        )
    return (images.unsqueeze(0), True) if images.dim() == 3 else (images, False)  # (B, C, H, W)


def _param(name: str, severity: int) -> float:
    check_severity(severity)
    return SEVERITY_PARAMS[name][severity - 1]


def gaussian_noise(images: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Add zero-mean Gaussian noise with the severity's standard deviation, then clip to [0, 1].

    Example:
        >>> x = torch.full((1, 8, 8), 0.5)
        >>> y = gaussian_noise(x, 3, generator=torch.Generator().manual_seed(0))
        >>> round((y - x).std().item(), 1), y.shape
        (0.1, torch.Size([1, 8, 8]))
    """
    std = _param("gaussian_noise", severity)
    _as_batch(images)  # validates
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype).to(images.device)
    return (images + std * noise).clamp(0.0, 1.0)


def gaussian_blur(images: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Gaussian blur with σ from the table, scaled by ``max(1, min(H, W) / 32)``; reflect padding.

    Example:
        >>> x = torch.zeros(1, 9, 9)
        >>> x[0, 4, 4] = 1.0
        >>> y = gaussian_blur(x, 5)
        >>> y[0, 4, 4] < 1.0, round(y.sum().item(), 4)
        (tensor(True), 1.0)
    """
    x, squeeze = _as_batch(images)
    side = min(x.shape[-2:])
    sigma = _param("gaussian_blur", severity) * max(1.0, side / _REFERENCE_SIDE)
    half = min(math.ceil(3.0 * sigma), side - 1)  # reflect padding needs a half-width below the image side
    out = TF.gaussian_blur(x, kernel_size=[2 * half + 1] * 2, sigma=[sigma, sigma]) if half > 0 else x
    return out.squeeze(0) if squeeze else out


def contrast(images: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Reduce contrast: ``c·x + (1 − c)·mean_grey(x)`` per image, with c from the table.

    Example:
        >>> x = torch.tensor([[[0.0, 1.0]]])
        >>> contrast(x, 2)  # c = 0.5, mean 0.5
        tensor([[[0.2500, 0.7500]]])
    """
    factor = _param("contrast", severity)
    x, squeeze = _as_batch(images)
    out = TF.adjust_contrast(x, factor)
    return out.squeeze(0) if squeeze else out


def pixelate(images: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Replace aligned k×k blocks by their mean (box down-sample, nearest up-sample); edge blocks may be partial.

    k is the table's block side × ``max(1, min(H, W) / 32)``, rounded, at most half the image side.

    Example:
        >>> x = torch.tensor([[[0.0, 0.2, 0.4, 0.6]]])
        >>> pixelate(x, 1)  # 2 × 2 blocks (here 1 × 2: the image has one row)
        tensor([[[0.1000, 0.1000, 0.5000, 0.5000]]])
    """
    x, squeeze = _as_batch(images)
    height, width = x.shape[-2:]
    side = min(height, width)
    block = round(_param("pixelate", severity) * max(1.0, side / _REFERENCE_SIDE))
    block = max(1, min(block, max(height, width) // 2))
    means = F.avg_pool2d(x, block, ceil_mode=True)  # (B, C, ⌈H / k⌉, ⌈W / k⌉), partial edge blocks averaged
    out = means.repeat_interleave(block, dim=-2).repeat_interleave(block, dim=-1)[..., :height, :width]  # (B, C, H, W)
    return out.squeeze(0) if squeeze else out


def jpeg(images: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """A real JPEG round trip through PIL (as CIFAR-10-C made it) at the severity's quality.

    Images are quantised to 8 bits first, as a saved JPEG would be; 1 or 3 channels. (PIL rather than
    ``torchvision.io.encode_jpeg``, which torchvision 0.29 deprecates.)

    Example:
        >>> x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> y = jpeg(x, 5)
        >>> y.shape, bool((y - x).abs().mean() > 0.01)
        (torch.Size([2, 3, 8, 8]), True)
    """
    quality = int(_param("jpeg", severity))
    x, squeeze = _as_batch(images)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"Expected `images` with 1 or 3 channels for JPEG, got {x.shape[1]}")
    as_bytes = (x.detach() * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()  # (B, H, W, C)
    decoded = []
    for image in as_bytes:
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="JPEG", quality=quality)
        decoded.append(np.asarray(Image.open(buffer)).reshape(image.shape))  # (H, W, C)
    out = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2)  # (B, C, H, W)
    out = out.to(device=images.device, dtype=images.dtype) / 255.0
    return out.squeeze(0) if squeeze else out


def rotation(images: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Rotate each image by the severity's angle, clockwise or anticlockwise at random; corners filled with 0.

    Example:
        >>> x = torch.rand(4, 1, 6, 6)
        >>> y = rotation(x, 5, generator=torch.Generator().manual_seed(0))  # ±90°: exact quarter turns
        >>> all(torch.equal(yi, torch.rot90(xi, 1, (-2, -1))) or torch.equal(yi, torch.rot90(xi, -1, (-2, -1)))
        ...     for xi, yi in zip(x, y))
        True
    """
    angle = float(_param("rotation", severity))
    x, squeeze = _as_batch(images)
    anticlockwise = torch.randint(0, 2, (x.shape[0],), generator=generator).bool().to(x.device)  # (B,)
    out = torch.empty_like(x)
    for mask, signed in ((anticlockwise, angle), (~anticlockwise, -angle)):
        if mask.any():
            out[mask] = TF.rotate(x[mask], signed, interpolation=InterpolationMode.BILINEAR, fill=0.0)
    out = out.clamp(0.0, 1.0)  # bilinear weights can overshoot by rounding
    return out.squeeze(0) if squeeze else out


CORRUPTIONS: dict[str, Callable[..., Tensor]] = {
    "gaussian_noise": gaussian_noise,
    "gaussian_blur": gaussian_blur,
    "contrast": contrast,
    "pixelate": pixelate,
    "jpeg": jpeg,
    "rotation": rotation,
}
"""Every corruption by name; each is called as ``fn(images, severity, generator=None)``."""


def corrupt(images: Tensor, name: str, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Apply the corruption ``name`` at ``severity`` (1–5) to float images in [0, 1].

    Args:
        images: (C, H, W) or (B, C, H, W) float tensor in [0, 1].
        name: a key of :data:`CORRUPTIONS`.
        severity: 1 (mild) to 5 (severe).
        generator: CPU generator for the random corruptions (noise, rotation direction); None uses torch's
            global generator.

    Returns:
        The corrupted images, same shape, dtype and device, in [0, 1].

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> corrupt(x, "pixelate", 4).shape
        torch.Size([2, 3, 16, 16])
        >>> corrupt(x, "fog", 1)
        Traceback (most recent call last):
        ...
        ValueError: Expected `name` to be one of ['gaussian_noise', 'gaussian_blur', 'contrast', 'pixelate', 'jpeg', 'rotation'], got 'fog'
    """  # noqa: E501
    if name not in CORRUPTIONS:
        raise ValueError(f"Expected `name` to be one of {list(CORRUPTIONS)}, got {name!r}")
    check_severity(severity)
    return CORRUPTIONS[name](images, severity, generator=generator)
