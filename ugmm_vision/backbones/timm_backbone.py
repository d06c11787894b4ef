"""A timm model used as a feature extractor, sized and preprocessed the way timm intends."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import timm
from lightning.pytorch.core.mixins import HyperparametersMixin
from timm.models import parse_model_name, split_model_name_tag
from torch import Tensor, nn

from ugmm_vision.specs import record_init_args

__all__ = ["TimmBackbone", "check_timm_model_name"]


def check_timm_model_name(model_name: str) -> None:
    """Raise ``ValueError`` unless ``timm.create_model`` accepts ``model_name``, with close matches when it can.

    Accepted as timm accepts them: a registry architecture (``"resnet18"``), one with a pretrained tag
    (``"resnet18.a1_in1k"``), a Hugging Face Hub repository (``"hf-hub:timm/resnet18.a1_in1k"``) or a local folder
    holding ``config.json`` and the weights (``"local-dir:/path/to/folder"``). The architecture of the last two is
    read from their ``config.json`` when the model is built.

    Example:
        >>> check_timm_model_name("hf-hub:timm/resnet18.a1_in1k")
        >>> check_timm_model_name("resnet81")
        Traceback (most recent call last):
        ...
        ValueError: Expected `model_name` to be a timm architecture, got 'resnet81'; did you mean 'resnet18', ...
    """
    try:
        source, model_id = parse_model_name(model_name)
    except ValueError as err:  # an unknown "source:" prefix, or a repository id without "hf-hub:"
        raise ValueError(f"Expected `model_name` to be a name timm accepts, got {model_name!r}: {err}") from None
    if source is not None or timm.is_model(split_model_name_tag(model_id)[0]):
        return
    close = difflib.get_close_matches(model_name, timm.list_models(), n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"Expected `model_name` to be a timm architecture, got {model_name!r}{hint}")


class TimmBackbone(HyperparametersMixin, nn.Module):
    """Any timm model built with ``num_classes=0``, mapping images to pooled pre-logits features.

    The feature width is timm's ``head_hidden_size`` — what ``forward`` returns with the classifier removed —
    not ``num_features`` (they differ for MobileNetV3, whose head has a conv after pooling).

    Args:
        model_name: what ``timm.create_model`` takes: an architecture (``"resnet50"``), one with a pretrained tag
            (``"resnet50.a1_in1k"``), a Hub repository (``"hf-hub:timm/resnet50.a1_in1k"``, architecture and
            preprocessing read from its ``config.json``) or a local folder laid out the same way
            (``"local-dir:/path/to/folder"``).
        pretrained: load pretrained weights (from timm's hub, or from ``pretrained_file``).
        pretrained_file: a local weights file (``.pth``/``.safetensors``) loaded through timm's pretrained path
            (``pretrained_cfg_overlay=dict(file=...)``) — for machines without internet. Implies ``pretrained``.
        cache_dir: where timm and the Hugging Face Hub client keep downloaded files (None: their defaults,
            ``$HF_HUB_CACHE`` for ``hf-hub:`` names). A cache filled elsewhere and copied here loads offline
            with ``HF_HUB_OFFLINE=1``.
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
        cache_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        record_init_args(self)  # the spec that rebuilds this backbone from a checkpoint
        check_timm_model_name(model_name)
        kwargs = dict(model_kwargs or {})
        if pretrained_file is not None:
            path = Path(pretrained_file)
            if not path.is_file():
                raise FileNotFoundError(f"Expected `pretrained_file` to be an existing weights file, got {path}")
            pretrained = True
            kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
        self.model_name = model_name
        if cache_dir is not None:
            kwargs["cache_dir"] = Path(cache_dir)
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
