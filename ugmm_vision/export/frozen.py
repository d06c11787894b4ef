"""The module that is exported: backbone + head with every uGMM layer frozen to buffers and the reference formula.

The fused kernels are a custom operator (opaque to the exporters, and needing this package at load time) and the
σ floor is an ``autograd.Function`` (only its gradient differs from a plain clamp): neither matters for inference,
and neither survives export. :class:`FrozenUGMMLayer` computes the same log-densities with the materialising
reference formula (:func:`~ugmm_vision.functional.ugmm_log_prob_reference`) from a snapshot of the layer's
parameters (σ already floored), one chunk of neurons at a time, so that the exported graph's largest intermediate
is (B, chunk, I) with chunk·I ≤ :data:`EXPORT_TERMS_PER_ROW`, never (B, O, I): a 2048→1000 head at batch 64 holds
16 MiB per intermediate instead of 0.5 GiB.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from ugmm_vision.checks import check_positive_float, check_positive_int
from ugmm_vision.functional.ugmm import ugmm_log_prob_reference
from ugmm_vision.layers import UGMMLayer

__all__ = ["EXPORT_TERMS_PER_ROW", "ExportedClassifier", "FrozenUGMMLayer", "prepare_for_export"]

EXPORT_TERMS_PER_ROW = 1 << 16
"""Component terms (neuron, input) per input row that one chunk of a :class:`FrozenUGMMLayer` materialises."""


class FrozenUGMMLayer(nn.Module):
    """Inference-only copy of a :class:`~ugmm_vision.layers.UGMMLayer`: buffers and the reference formula.

    The neurons are evaluated in chunks of ``max(1, terms_per_row // I)``, each chunk's log-densities by the
    reference formula (exact per neuron, so the chunks need no combining), concatenated: the exporters unroll
    the loop, and the largest intermediate holds B·chunk·I terms instead of B·O·I.

    Args:
        layer: the layer to copy; its floored ``log_sigma`` (``effective_log_sigma`` where it has one) is stored.
        terms_per_row: bound on chunk·I, the terms per input row held by one chunk.

    Shape:
        - Input: (B, I).
        - Output: (B, O) log-densities, equal to ``layer.eval()(x)``.

    Example:
        >>> layer = UGMMLayer(4, 3).eval()
        >>> x = torch.randn(2, 4)
        >>> torch.allclose(FrozenUGMMLayer(layer)(x), layer(x), atol=1e-5)
        True
    """

    def __init__(self, layer: UGMMLayer, terms_per_row: int = EXPORT_TERMS_PER_ROW) -> None:
        super().__init__()
        check_positive_int("terms_per_row", terms_per_row)
        log_sigma = getattr(layer, "effective_log_sigma", layer.log_sigma)
        for name, value in (("mu", layer.mu), ("log_sigma", log_sigma), ("mix_logits", layer.mix_logits)):
            self.register_buffer(name, value.detach().clone())
        out_features, in_features = self.log_sigma.shape
        self.out_features = int(out_features)  # a Python int: tracing would record a tensor's shape as a value
        self.chunk = min(out_features, max(1, terms_per_row // in_features))

    def forward(self, x: Tensor) -> Tensor:
        out_features = self.out_features
        tied = self.mu.dim() == 1
        chunks = []
        for o0 in range(0, out_features, self.chunk):  # a Python loop over static sizes: unrolled when exported
            o1 = min(o0 + self.chunk, out_features)
            mu = self.mu if tied else self.mu[o0:o1]  # (c, I), or (I,) when tied
            chunks.append(ugmm_log_prob_reference(x, mu, self.log_sigma[o0:o1], self.mix_logits[o0:o1]))  # (B, c)
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=1)  # (B, O)


class ExportedClassifier(nn.Module):
    """``head(backbone(images)) / temperature`` for export; uGMM layers frozen (see :class:`FrozenUGMMLayer`).

    Args:
        backbone: the feature extractor (copied).
        head: the head (copied; its uGMM layers replaced).
        temperature: the logits are divided by it (1: unchanged); from temperature scaling.

    Shape:
        - Input: (B, C, H, W) images, preprocessed as for the model.
        - Output: (B, num_classes) logits.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = check_positive_float("temperature", temperature)
        self.backbone = copy.deepcopy(backbone)
        self.head = _freeze_ugmm_layers(copy.deepcopy(head))
        self.eval().requires_grad_(False)

    def forward(self, images: Tensor) -> Tensor:
        logits = self.head(self.backbone(images))  # (B, K)
        return logits if self.temperature == 1.0 else logits / self.temperature


def _freeze_ugmm_layers(module: nn.Module) -> nn.Module:
    if isinstance(module, UGMMLayer):
        return FrozenUGMMLayer(module)
    for name, child in list(module.named_children()):
        setattr(module, name, _freeze_ugmm_layers(child))
    return module


def prepare_for_export(model: nn.Module, temperature: float = 1.0) -> ExportedClassifier:
    """An :class:`ExportedClassifier` over ``model.backbone`` and ``model.head`` (the model is left untouched).

    Example:
        >>> from ugmm_vision.backbones import SmallCNN
        >>> from ugmm_vision.heads import UGMMHead
        >>> from ugmm_vision.models import ImageClassifier
        >>> model = ImageClassifier(SmallCNN(in_chans=1), UGMMHead, num_classes=3).eval()
        >>> images = torch.randn(2, 1, 8, 8)
        >>> exported = prepare_for_export(model, temperature=2.0)
        >>> torch.allclose(exported(images), model(images) / 2.0, atol=1e-5)
        True
    """
    for name in ("backbone", "head"):
        if not isinstance(getattr(model, name, None), nn.Module):
            raise ValueError(
                f"Expected `model` with a `{name}` module (an ImageClassifier), got {type(model).__name__}"
            )
    return ExportedClassifier(model.backbone, model.head, temperature)
