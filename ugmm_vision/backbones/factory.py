"""``create_backbone``: one name-based entry point for timm models and the built-in CNNs."""

from __future__ import annotations

from typing import Any

from torch import nn

from ugmm_vision.backbones.small_cnn import SmallCNN
from ugmm_vision.backbones.timm_backbone import TimmBackbone

__all__ = ["create_backbone"]

_BUILTIN = {"small_cnn": SmallCNN}


def create_backbone(name: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build a feature extractor by name; the result exposes ``num_features``.

    Args:
        name: ``"timm/<model_name>"`` with any name ``timm.create_model`` takes (``"timm/resnet18"``,
            ``"timm/resnet18.a1_in1k"``, ``"timm/hf-hub:timm/resnet18.a1_in1k"``, ``"timm/local-dir:/folder"``),
            or a built-in name (``"small_cnn"``).
        pretrained: load pretrained weights (timm models only); see :class:`TimmBackbone` for local files.
        **kwargs: passed to the backbone's constructor (``in_chans``, ``pretrained_file``, ``model_kwargs``, …).

    Example:
        >>> create_backbone("small_cnn", in_chans=1).num_features
        128
        >>> create_backbone("timm/resnet18").num_features
        512
    """
    if name.startswith("timm/"):
        return TimmBackbone(name.removeprefix("timm/"), pretrained=pretrained, **kwargs)
    if name in _BUILTIN:
        if pretrained:
            raise ValueError(f"Expected `pretrained=False` for the built-in backbone {name!r}: it has no weights")
        return _BUILTIN[name](**kwargs)
    raise ValueError(f"Expected `name` to be 'timm/<model_name>' or one of {sorted(_BUILTIN)}, got {name!r}")
