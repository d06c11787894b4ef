"""``nn.Module``s that own parameters."""

from ugmm_vision.layers.ugmm import UGMMInit, UGMMLayer

__all__ = ["UGMMInit", "UGMMLayer"]
