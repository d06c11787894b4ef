"""Save a trained timm backbone as a weights file that timm's pretrained path loads (``pretrained_file=``).

The file is a safetensors state dict of the timm model built with ``num_classes=0`` (no classifier), in timm's
standard 3-channel form: a backbone trained on grey images (``in_chans=1``) has its first convolution's kernel
``W`` saved as ``W / 3`` repeated over three channels. timm's loader adapts 3-channel weights to the model's
``in_chans`` (``adapt_input_conv`` sums them for one channel, which gives back ``W``), so the same file serves
``create_backbone("timm/<name>", pretrained_file=..., in_chans=1)`` and ``in_chans=3`` with grey images repeated
over the channels.
"""

from __future__ import annotations

from pathlib import Path

import safetensors.torch
import torch

from ugmm_vision.backbones.timm_backbone import TimmBackbone

__all__ = ["backbone_state_dict", "save_backbone_weights"]


def _first_convs(backbone: TimmBackbone) -> tuple[str, ...]:
    first = backbone.model.pretrained_cfg.get("first_conv")
    if not first:
        return ()
    return (first,) if isinstance(first, str) else tuple(first)


def backbone_state_dict(backbone: TimmBackbone) -> dict[str, torch.Tensor]:
    """The backbone's timm state dict with the first convolution in 3-channel form, contiguous, on the CPU.

    Example:
        >>> backbone = TimmBackbone("resnet10t", in_chans=1)
        >>> state = backbone_state_dict(backbone)
        >>> kernel = backbone.model.conv1[0].weight
        >>> state["conv1.0.weight"].shape, torch.allclose(state["conv1.0.weight"].sum(1, keepdim=True), kernel)
        (torch.Size([24, 3, 3, 3]), True)
    """
    if not isinstance(backbone, TimmBackbone):
        raise TypeError(f"Expected `backbone` to be a TimmBackbone, got {type(backbone).__name__}")
    if backbone.in_chans not in (1, 3):
        raise ValueError(f"Expected a backbone with `in_chans` 1 or 3 (timm's 3-channel form), got {backbone.in_chans}")
    state = {k: v.detach().cpu().contiguous() for k, v in backbone.model.state_dict().items()}
    if backbone.in_chans == 1:
        for name in _first_convs(backbone):
            key = f"{name}.weight"
            if key in state and state[key].shape[1] == 1:
                state[key] = (state[key] / 3).repeat(1, 3, 1, 1).contiguous()  # (O, 1, k, k) → (O, 3, k, k)
    return state


def save_backbone_weights(backbone: TimmBackbone, path: str | Path, *, metadata: dict[str, str] | None = None) -> Path:
    """Write the backbone's weights as safetensors (atomically) for ``create_backbone(..., pretrained_file=path)``.

    Args:
        backbone: a :class:`TimmBackbone` (``in_chans`` 1 or 3).
        path: the ``.safetensors`` file to write; its folder is created.
        metadata: strings stored in the file's header (the architecture is added as ``"architecture"``).

    Returns:
        The path written.

    Example:
        >>> import tempfile
        >>> from ugmm_vision.backbones import create_backbone
        >>> target = Path(tempfile.mkdtemp()) / "w.safetensors"
        >>> path = save_backbone_weights(TimmBackbone("resnet10t", in_chans=1), target)
        >>> create_backbone("timm/resnet10t", pretrained_file=path, in_chans=1).num_features
        512
    """
    from ugmm_vision.report.io import atomic_write_bytes  # the report package imports models, which import this one

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"Expected `path` to end in .safetensors, got {str(path)!r}")
    header = {"architecture": backbone.model_name, "format": "pt", **(metadata or {})}
    return atomic_write_bytes(path, safetensors.torch.save(backbone_state_dict(backbone), metadata=header))
