"""Where in an image a class's log-density comes from: the head applied at every position of the feature map.

A convolutional backbone pools its feature map ``(F, h, w)`` into one vector by averaging positions; the head
then maps that vector to class log-densities. :func:`class_density_map` instead feeds the head each position's
own feature vector (the head's norm, then its layers), giving one class log-density per position, and upsamples
the (h, w) map to the image size.

**The approximation.** The head was trained on *pooled* features, the mean over positions; a single position's
vector is not such a mean (it is sparser and differently scaled — the head's LayerNorm removes the scale but not
the shape). For a linear head the map is exact in one sense: the pooled logit is the mean of the per-position
logits (class activation mapping). A uGMM neuron is a log of a sum of Gaussians, which does not commute with
averaging, so the pooled log-density is *not* the mean of the map. Read the map qualitatively — where the image
looks most like the class to the head — not as a decomposition of the logit.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ugmm_vision.checks import check_non_negative_int
from ugmm_vision.inspect._common import check_index

__all__ = ["class_density_map"]


def _restore_modes(modules: tuple[nn.Module, ...], modes: list[list[bool]]) -> None:
    for module, flags in zip(modules, modes, strict=True):
        for sub, flag in zip(module.modules(), flags, strict=True):
            sub.training = flag


@torch.no_grad()
def class_density_map(
    backbone: nn.Module,
    head: nn.Module,
    image: Tensor,
    class_index: int,
    *,
    mode: Literal["bilinear", "nearest"] | None = "bilinear",
) -> Tensor:
    """Per-position class log-density of a convolutional backbone's feature map, upsampled to the image.

    The backbone must have ``forward_features`` returning unpooled maps (B, F, h, w) with ``F`` equal to the
    head's ``in_features`` — :class:`~ugmm_vision.backbones.SmallCNN` and timm CNNs whose pooled features are the
    spatial mean of that map (ResNets, EfficientNets). Vision transformers (tokens) and models with a conv head
    after pooling (MobileNetV3) are refused. Backbone and head run in eval mode; their modes are restored
    after. See the module docstring for what the map approximates.

    Args:
        backbone: the feature extractor (e.g. ``model.backbone`` of an
            :class:`~ugmm_vision.models.ImageClassifier`).
        head: the head mapping (N, F) features to (N, C) logits (a uGMM head gives class log-densities; any head
            works).
        image: one image (C, H, W) or a batch (B, C, H, W), preprocessed as for the model.
        class_index: the class whose log-density is mapped.
        mode: interpolation to the image size, or None to return the (h, w) feature-map resolution.

    Returns:
        Log-densities, shape (H, W) — or (B, H, W) for a batch; (h, w) / (B, h, w) when ``mode`` is None.

    Example:
        >>> from ugmm_vision.backbones import SmallCNN
        >>> from ugmm_vision.heads import UGMMHead
        >>> class_density_map(SmallCNN(in_chans=1), UGMMHead(128, 10), torch.randn(1, 8, 8), 3).shape
        torch.Size([8, 8])
    """
    if not isinstance(image, Tensor) or image.dim() not in (3, 4) or not image.is_floating_point():
        got = f"shape {tuple(image.shape)}" if isinstance(image, Tensor) else repr(image)
        raise ValueError(f"Expected `image` of shape (C, H, W) or (B, C, H, W) with a floating dtype, got {got}")
    if mode not in ("bilinear", "nearest", None):
        raise ValueError(f"Expected `mode` to be 'bilinear', 'nearest' or None, got {mode!r}")
    if not callable(getattr(backbone, "forward_features", None)):
        raise ValueError(
            f"Expected `backbone` with a `forward_features` method giving (B, F, h, w) maps, got {type(backbone)}"
        )
    in_features = getattr(head, "in_features", None)
    num_classes = getattr(head, "num_classes", None)
    if isinstance(num_classes, int):
        check_index("class_index", class_index, num_classes, "classes")
    else:
        check_non_negative_int("class_index", class_index)

    single = image.dim() == 3
    images = image.unsqueeze(0) if single else image  # (B, C, H, W)
    modules = (backbone, head)
    modes = [[sub.training for sub in module.modules()] for module in modules]
    backbone.eval()
    head.eval()
    try:
        fmap = backbone.forward_features(images)  # (B, F, h, w)
        if fmap.dim() != 4 or (isinstance(in_features, int) and fmap.shape[1] != in_features):
            raise ValueError(
                f"Expected `backbone.forward_features` to give (B, F, h, w) maps with F = the head's in_features "
                f"({in_features}), got shape {tuple(fmap.shape)}: this backbone has no spatial map the head can read"
            )
        batch, width, h, w = fmap.shape
        positions = fmap.permute(0, 2, 3, 1).reshape(batch * h * w, width)  # (B·h·w, F)
        logits = head(positions)  # (B·h·w, C)
        if not 0 <= class_index < logits.shape[-1]:
            raise ValueError(f"Expected `class_index` in [0, {logits.shape[-1] - 1}], got {class_index}")
        density = logits[:, class_index].reshape(batch, 1, h, w)  # (B, 1, h, w)
    finally:
        _restore_modes(modules, modes)
    if mode is not None:
        size = tuple(images.shape[-2:])
        if mode == "bilinear":
            density = F.interpolate(density, size=size, mode="bilinear", align_corners=False)  # (B, 1, H, W)
        else:
            density = F.interpolate(density, size=size, mode="nearest")  # (B, 1, H, W)
    density = density.squeeze(1)  # (B, H, W)
    return density[0] if single else density
