"""Classifier heads mapping features (B, F) to logits (B, C): the uGMM head and its baselines."""

from ugmm_vision.heads._common import count_parameters
from ugmm_vision.heads.baselines import LinearHead, MLPHead
from ugmm_vision.heads.ugmm_head import UGMMHead

__all__ = ["LinearHead", "MLPHead", "UGMMHead", "count_parameters"]
