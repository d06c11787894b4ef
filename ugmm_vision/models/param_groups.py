"""Named optimiser parameter groups, with timm's rule for which parameters get no weight decay.

Weight decay pulls parameters towards 0. For the weights of linear and convolutional layers that is the intended
regulariser; for norm scales and shifts, biases and the uGMM parameters it is a bias with no benefit: it pulls
norm scales towards 0, and a uGMM layer's means towards 0, its ``log_sigma`` towards σ = 1 and its mixing logits
towards equal weights. timm's optimiser factory therefore leaves 1-D parameters and biases out of weight decay
(``filter_bias_and_bn``, ``timm.optim.param_groups_weight_decay``), plus the names a model lists in its
``no_weight_decay()`` (a ViT's position embedding). The same rule is applied here, with every parameter of a
:class:`~ugmm_vision.layers.UGMMLayer` added to the list. It is written out (a few lines) rather than calling timm's
helper, because that helper leaves out parameters with ``requires_grad=False``, and a backbone frozen for the first
epochs (``freeze_backbone_epochs``) must still be in the optimiser when it thaws.

Groups carry a ``name`` (``backbone``, ``head``, and ``backbone_no_decay``/``head_no_decay`` for the parameters
without weight decay), which Lightning's ``LearningRateMonitor`` uses in its logged keys.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from torch import nn

from ugmm_vision.layers import UGMMLayer

__all__ = ["named_parameter_groups", "no_weight_decay_names"]


def no_weight_decay_names(module: nn.Module) -> list[str]:
    """Parameter-name patterns of ``module`` that take no weight decay besides 1-D ones and biases.

    Every parameter of a :class:`~ugmm_vision.layers.UGMMLayer` (``mu``, ``log_sigma``, ``mix_logits`` are 2-D),
    and what any submodule lists in timm's ``no_weight_decay()``.

    Example:
        >>> from ugmm_vision.heads import UGMMHead
        >>> no_weight_decay_names(UGMMHead(4, 3))
        ['layers.0.*']
    """
    names: list[str] = []
    for prefix, sub in module.named_modules():
        dot = f"{prefix}." if prefix else ""
        if isinstance(sub, UGMMLayer):
            names.append(f"{dot}*")
        elif callable(getattr(sub, "no_weight_decay", None)):
            names.extend(f"{dot}{name}" for name in sub.no_weight_decay())
    return names


def named_parameter_groups(
    parts: Mapping[str, tuple[nn.Module, float | None]], *, filter_bias_and_bn: bool = True
) -> list[dict[str, Any]]:
    """One named group per part (with its learning rate), split by timm's weight-decay rule when asked.

    Args:
        parts: group name → (module, learning rate or None for the optimiser's own).
        filter_bias_and_bn: put norms, biases, uGMM parameters and ``no_weight_decay()`` names into
            ``<name>_no_decay`` groups with ``weight_decay=0`` (the others keep the optimiser's weight decay).

    Returns:
        Parameter groups for a ``torch.optim`` optimiser; empty groups are left out.

    Example:
        >>> from ugmm_vision.heads import LinearHead
        >>> groups = named_parameter_groups({"head": (LinearHead(4, 3), 0.1)})  # LayerNorm(4), then Linear(4, 3)
        >>> [(g["name"], [tuple(p.shape) for p in g["params"]], g.get("weight_decay")) for g in groups]
        [('head_no_decay', [(4,), (4,), (3,)], 0.0), ('head', [(3, 4)], None)]
    """
    groups: list[dict[str, Any]] = []
    for name, (module, lr) in parts.items():
        patterns = no_weight_decay_names(module)
        decay, no_decay = [], []
        for param_name, param in module.named_parameters():
            excluded = param.ndim <= 1 or param_name.endswith(".bias") or _matches(param_name, patterns)
            (no_decay if filter_bias_and_bn and excluded else decay).append(param)
        for group_name, params in ((f"{name}_no_decay", no_decay), (name, decay)):
            if not params:
                continue
            group: dict[str, Any] = {"name": group_name, "params": params}
            if params is no_decay:
                group["weight_decay"] = 0.0
            if lr is not None:
                group["lr"] = lr
            groups.append(group)
    return groups


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
