"""``FlattenBackbone``: no feature extractor at all, the pixels themselves (the paper's fully connected MNIST setup)."""

from __future__ import annotations

from lightning.pytorch.core.mixins import HyperparametersMixin
from torch import Tensor, nn

from ugmm_vision.checks import check_positive_int
from ugmm_vision.specs import record_init_args

__all__ = ["FlattenBackbone"]


class FlattenBackbone(HyperparametersMixin, nn.Module):
    """Flattens (B, C, H, W) images into (B, C·H·W) vectors, so a head sees raw pixels as its features.

    With it, ``ImageClassifier(FlattenBackbone(1, 28), UGMMHead(..., hidden=(128, 64)))`` is the paper's
    784-128-64-10 uGMM network and the same model with ``MLPHead`` its ReLU MLP. It has no parameters.

    Args:
        in_chans: channels of the input images.
        image_size: side length of the (square) input images; the feature width is ``in_chans * image_size**2``.

    Shape:
        - Input: (B, in_chans, image_size, image_size)
        - Output: (B, in_chans · image_size²)

    Example:
        >>> import torch
        >>> backbone = FlattenBackbone(in_chans=1, image_size=28)
        >>> backbone.num_features, backbone(torch.zeros(2, 1, 28, 28)).shape
        (784, torch.Size([2, 784]))
    """

    def __init__(self, in_chans: int = 1, image_size: int = 28) -> None:
        super().__init__()
        record_init_args(self)  # the spec that rebuilds this backbone from a checkpoint
        for name, value in (("in_chans", in_chans), ("image_size", image_size)):
            check_positive_int(name, value)
        self.in_chans = in_chans
        self.image_size = image_size
        self.num_features = in_chans * image_size * image_size

    def forward(self, images: Tensor) -> Tensor:
        expected = (self.in_chans, self.image_size, self.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"Expected `images` of shape (B, {', '.join(map(str, expected))}), got {tuple(images.shape)}"
            )
        return images.flatten(1)  # (B, C, H, W) → (B, C·H·W)

    def extra_repr(self) -> str:
        return f"in_chans={self.in_chans}, image_size={self.image_size}"
