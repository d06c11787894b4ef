"""Classifier heads mapping features (B, F) to logits (B, C): the uGMM head, its baselines, and the contract that
code asking "are these logits class log-densities?" checks (:class:`DensityHead`)."""

from ugmm_vision.heads._common import count_parameters
from ugmm_vision.heads.baselines import LinearHead, MLPHead, ParamMatchedMLPHead
from ugmm_vision.heads.cost import head_flops_per_image, ugmm_layer_flops
from ugmm_vision.heads.protocol import DensityHead, HeadFactory, head_outputs, is_density_head
from ugmm_vision.heads.ugmm_head import UGMMHead

__all__ = [
    "DensityHead",
    "HeadFactory",
    "LinearHead",
    "MLPHead",
    "ParamMatchedMLPHead",
    "UGMMHead",
    "count_parameters",
    "head_flops_per_image",
    "head_outputs",
    "is_density_head",
    "ugmm_layer_flops",
]
