"""``nn.Module``s that own parameters, and the builder of uGMM layer stacks."""

from ugmm_vision.layers.stack import check_hidden, per_layer_dropouts, stack_outputs, ugmm_stack
from ugmm_vision.layers.ugmm import SIGMA_FLOOR, UGMMInit, UGMMLayer

__all__ = [
    "SIGMA_FLOOR",
    "UGMMInit",
    "UGMMLayer",
    "check_hidden",
    "per_layer_dropouts",
    "stack_outputs",
    "ugmm_stack",
]
