"""``nn.Module``s that own parameters."""

from ugmm_vision.layers.ugmm import SIGMA_FLOOR, UGMMInit, UGMMLayer

__all__ = ["SIGMA_FLOOR", "UGMMInit", "UGMMLayer"]
