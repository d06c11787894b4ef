"""Classifier heads mapping features (B, F) to logits (B, C): the uGMM head and its baselines."""

from ugmm_vision.heads._common import count_parameters
from ugmm_vision.heads.baselines import LinearHead, MLPHead, ParamMatchedMLPHead
from ugmm_vision.heads.cost import head_flops_per_image, ugmm_layer_flops
from ugmm_vision.heads.ugmm_head import UGMMHead

__all__ = [
    "LinearHead",
    "MLPHead",
    "ParamMatchedMLPHead",
    "UGMMHead",
    "count_parameters",
    "head_flops_per_image",
    "ugmm_layer_flops",
]
