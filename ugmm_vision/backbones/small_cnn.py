"""A small convolutional backbone for 8×8, 28×28 and 32×32 images (digits, MNIST, CIFAR)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from lightning.pytorch.core.mixins import HyperparametersMixin
from torch import Tensor, nn

from ugmm_vision.checks import check_positive_int, is_int
from ugmm_vision.specs import record_init_args

__all__ = ["SmallCNN"]


class SmallCNN(HyperparametersMixin, nn.Module):
    """Stages of two ``conv3×3 → norm → activation`` blocks, 2×2 max-pooling between stages, global average pool.

    Three stages (the default) take 8×8 inputs to 2×2, 28×28 to 7×7 and 32×32 to 8×8 before pooling; the same
    module serves digits, MNIST-like and CIFAR-like data.

    Args:
        in_chans: input channels (1 for grey images, 3 for colour).
        widths: channels of each stage; the last is the feature width.
        norm_layer: normalisation type, called as ``norm_layer(channels)``.
        act_layer: activation type.
        drop_rate: dropout on the pooled features.

    Shape:
        - Input: (B, in_chans, H, W) with H, W ≥ 2^(len(widths) − 1)
        - Output: (B, widths[-1])

    Example:
        >>> import torch
        >>> SmallCNN(in_chans=1)(torch.randn(2, 1, 8, 8)).shape
        torch.Size([2, 128])
    """

    def __init__(
        self,
        in_chans: int = 1,
        widths: Sequence[int] = (32, 64, 128),
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[[], nn.Module] = nn.ReLU,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        record_init_args(self)  # the spec that rebuilds this backbone from a checkpoint
        check_positive_int("in_chans", in_chans)
        widths = tuple(widths)
        if not widths or any(not is_int(w) or w < 1 for w in widths):
            raise ValueError(f"Expected `widths` to be a non-empty sequence of positive integers, got {widths}")
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"Expected `drop_rate` in [0, 1), got {drop_rate}")
        layers: list[nn.Module] = []
        channels = in_chans
        for i, width in enumerate(widths):
            if i > 0:
                layers.append(nn.MaxPool2d(2))
            for _ in range(2):
                layers += [
                    nn.Conv2d(channels, width, 3, padding=1, bias=False),
                    norm_layer(width),
                    act_layer(),
                ]
                channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(drop_rate))
        self.in_chans = in_chans
        self.min_size = 2 ** (len(widths) - 1)
        self.num_features = widths[-1]

    def forward_features(self, images: Tensor) -> Tensor:
        """Unpooled feature maps, (B, widths[-1], H / 2^(S−1), W / 2^(S−1))."""
        if torch.jit.is_tracing():  # a trace records one shape; the checks would only be Python branches in it
            pass
        elif images.dim() != 4 or images.shape[1] != self.in_chans:
            raise ValueError(f"Expected `images` of shape (B, {self.in_chans}, H, W), got {tuple(images.shape)}")
        elif min(images.shape[-2:]) < self.min_size:
            raise ValueError(
                f"Expected `images` at least {self.min_size}×{self.min_size} pixels, got {tuple(images.shape[-2:])}"
            )
        return self.features(images)

    def forward(self, images: Tensor) -> Tensor:
        return self.pool(self.forward_features(images))
