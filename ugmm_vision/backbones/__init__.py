"""Feature extractors: timm models (``num_classes=0``) and small CNNs; each exposes ``num_features``."""

from ugmm_vision.backbones.factory import create_backbone
from ugmm_vision.backbones.flatten import FlattenBackbone
from ugmm_vision.backbones.small_cnn import SmallCNN
from ugmm_vision.backbones.timm_backbone import TimmBackbone, check_timm_model_name

__all__ = ["FlattenBackbone", "SmallCNN", "TimmBackbone", "check_timm_model_name", "create_backbone"]
