"""``IdentityBackbone``: for heads trained on precomputed (cached) features."""

from __future__ import annotations

from lightning.pytorch.core.mixins import HyperparametersMixin
from torch import Tensor, nn

from ugmm_vision.checks import check_positive_int
from ugmm_vision.specs import record_init_args

__all__ = ["IdentityBackbone"]


class IdentityBackbone(HyperparametersMixin, nn.Module):
    """Passes feature vectors through unchanged and declares their width.

    Args:
        num_features: width F of the cached features.

    Shape:
        - Input: (B, F)
        - Output: (B, F)

    Example:
        >>> import torch
        >>> IdentityBackbone(4)(torch.ones(2, 4)).shape
        torch.Size([2, 4])
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        record_init_args(self)  # the spec that rebuilds this backbone from a checkpoint
        check_positive_int("num_features", num_features)
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        if features.dim() != 2 or features.shape[1] != self.num_features:
            raise ValueError(f"Expected `features` of shape (B, {self.num_features}), got {tuple(features.shape)}")
        return features
