"""What a head costs per image: parameters and FLOPs, with a documented rule for the uGMM layer.

torch's ``FlopCounterMode`` counts matrix products and convolutions only, so it sees a Linear layer's
``2·I·O`` FLOPs but nothing of a uGMM layer, whose work is elementwise and exponential. The uGMM layer is therefore
counted by hand with :data:`UGMM_FLOPS_PER_COMPONENT` per (neuron, input) pair — one mixture component — and
:data:`UGMM_FLOPS_PER_NEURON` per neuron, following the fused forward pass (DESIGN.md §2):

====================================  =====
per component (b, j, k)               FLOPs
====================================  =====
``t = x − μ``                         1
``u = t · (1/σ)``                     1
``v = u · u``                         1
``w = c[j,k] − ½·v`` (c = log π − log σ − ½·log 2π, precomputed per layer)   2
``e = exp(w − m)`` (exponential counted as one FLOP)   2
``s += e``                            1
**total**                             **8**
per neuron: ``log s + m``             2
====================================  =====

Per-layer constants (``log_softmax`` of the mixing logits, ``log σ``) are O(O·I) once per batch and not counted.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from ugmm_vision.layers.ugmm import UGMMLayer

__all__ = ["UGMM_FLOPS_PER_COMPONENT", "UGMM_FLOPS_PER_NEURON", "head_flops_per_image", "ugmm_layer_flops"]

UGMM_FLOPS_PER_COMPONENT = 8
UGMM_FLOPS_PER_NEURON = 2


def ugmm_layer_flops(batch: int, in_features: int, out_features: int) -> int:
    """Forward FLOPs of one uGMM layer on ``batch`` rows, by the rule in this module's docstring.

    Example:
        >>> ugmm_layer_flops(2, 4, 3)  # 2·3·(8·4 + 2)
        204
    """
    return batch * out_features * (UGMM_FLOPS_PER_COMPONENT * in_features + UGMM_FLOPS_PER_NEURON)


def head_flops_per_image(head: nn.Module, in_features: int) -> int:
    """Forward FLOPs of ``head`` for one feature vector: torch's counter plus the uGMM rule for uGMM layers.

    Example:
        >>> head_flops_per_image(nn.Linear(4, 3), 4)  # 2·I·O
        24
    """
    counted = 0

    def count_ugmm(module: UGMMLayer, args: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal counted
        counted += ugmm_layer_flops(args[0].shape[0], module.in_features, module.out_features)

    hooks = [m.register_forward_hook(count_ugmm) for m in head.modules() if isinstance(m, UGMMLayer)]
    was_training = head.training
    try:
        head.eval()
        parameter = next(head.parameters(), None)
        x = (
            nn.init.normal_(parameter.new_empty(1, in_features))
            if parameter is not None
            else nn.init.normal_(Tensor(1, in_features))
        )
        with FlopCounterMode(display=False) as counter:
            head(x)
    finally:
        for hook in hooks:
            hook.remove()
        head.train(was_training)
    return int(counter.get_total_flops()) + counted
