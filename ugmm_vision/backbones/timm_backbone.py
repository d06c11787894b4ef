"""A timm model used as a feature extractor, sized and preprocessed the way timm intends."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import timm
from torch import Tensor, nn

__all__ = ["TimmBackbone", "check_timm_model_name"]


def check_timm_model_name(model_name: str) -> None:
    """Raise ``ValueError`` with close matches if timm has no architecture called ``model_name``."""
    if timm.is_model(model_name):
        return
    close = difflib.get_close_matches(model_name, timm.list_models(), n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"Expected `model_name` to be a timm architecture, got {model_name!r}{hint}")


class TimmBackbone(nn.Module):
    """Any timm model built with ``num_classes=0``, mapping images to pooled pre-logits features.

    The feature width is timm's ``head_hidden_size`` — what ``forward`` returns with the classifier removed —
    not ``num_features`` (they differ for MobileNetV3, whose head has a conv after pooling).

    Args:
        model_name: a timm architecture name, e.g. ``"resnet50"``.
        pretrained: load pretrained weights (from timm's hub, or from ``pretrained_file``).
        pretrained_file: a local weights file (``.pth``/``.safetensors``) loaded through timm's pretrained path
            (``pretrained_cfg_overlay=dict(file=...)``) — for machines without internet. Implies ``pretrained``.
        in_chans: input channels; timm adapts pretrained first-layer weights when this is not 3.
        model_kwargs: further keyword arguments for ``timm.create_model`` (e.g. ``img_size`` for a ViT,
            ``drop_path_rate``).

    Attributes:
        image_size: the (H, W) the model requires, for models with a fixed input size (a ViT's patch embedding
            with ``strict_img_size``); None when any size works. :class:`~ugmm_vision.models.ImageClassifier`
            checks batches against it.

    Shape:
        - Input: (B, in_chans, H, W)
        - Output: (B, num_features)

    Example:
        >>> import torch
        >>> backbone = TimmBackbone("resnet18", in_chans=1)
        >>> backbone(torch.randn(2, 1, 32, 32)).shape
        torch.Size([2, 512])
    """

    def __init__(
        self,
        model_name: str,
        pretrained: bool = False,
        pretrained_file: str | Path | None = None,
        in_chans: int = 3,
        model_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_timm_model_name(model_name)
        kwargs = dict(model_kwargs or {})
        if pretrained_file is not None:
            path = Path(pretrained_file)
            if not path.is_file():
                raise FileNotFoundError(f"Expected `pretrained_file` to be an existing weights file, got {path}")
            pretrained = True
            kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
        self.model_name = model_name
        self.model = timm.create_model(model_name, pretrained=pretrained, num_classes=0, in_chans=in_chans, **kwargs)
        self.in_chans = in_chans
        self.num_features: int = getattr(self.model, "head_hidden_size", self.model.num_features)
        patch_embed = getattr(self.model, "patch_embed", None)
        fixed = getattr(patch_embed, "strict_img_size", False) and not getattr(self.model, "dynamic_img_size", False)
        img_size = getattr(patch_embed, "img_size", None)
        self.image_size: tuple[int, int] | None = tuple(img_size) if fixed and img_size is not None else None

    @property
    def data_config(self) -> dict[str, Any]:
        """timm's preprocessing config (input size, mean, std, interpolation, crop) for this model."""
        return timm.data.resolve_model_data_config(self.model)

    def forward_features(self, images: Tensor) -> Tensor:
        """Unpooled features (e.g. (B, C, h, w) for CNNs, (B, N, D) tokens for ViTs)."""
        return self.model.forward_features(images)

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images)
