"""``UGMMHead``: normalisation followed by a stack of uGMM layers, mapping features to class log-densities."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ugmm_vision.checks import check_positive_int
from ugmm_vision.functional.backend import UGMMBackend
from ugmm_vision.heads._common import NormLayer, make_norm
from ugmm_vision.layers.stack import check_hidden, stack_outputs, ugmm_stack
from ugmm_vision.layers.ugmm import SIGMA_FLOOR, UGMMInit

__all__ = ["UGMMHead"]


class UGMMHead(nn.Module):
    """Classifier head whose neurons are univariate Gaussian mixtures over their inputs; a
    :class:`~ugmm_vision.heads.DensityHead`.

    The last layer's ``num_classes`` log-densities are used directly as logits (docs/maths.md §1). Features are
    normalised first (LayerNorm by default) because inputs far from every mean give very negative log-densities.

    Args:
        in_features: width F of the backbone's pooled features.
        num_classes: number of classes C.
        hidden: widths of hidden uGMM layers between the features and the class layer (empty: one layer).
        norm_layer: normalisation applied to the features, called as ``norm_layer(in_features)``; None for none.
        tied_means: tie the means of each layer across its neurons (about 2/3 of the parameters).
        mixing_dropout: component dropout probability, one value for every layer or one per layer
            (``len(hidden) + 1`` values; the paper uses 0.2 on the first layer only).
        init: parameter initialisation of the uGMM layers (see :class:`UGMMLayer`). ``"unit"`` (σ = 1, equal
            weights) is the default because it suits LayerNorm'd features: on digits it reached better accuracy
            and calibration than the paper's init in the same budget (``benchmarks/head_init.py``, recorded in
            ``docs/benchmarks.md``); ``"paper"`` stays available.
        backend: how the layers compute (``"auto"``, ``"fused"``, ``"reference"``; see :class:`UGMMLayer`).
        sigma_floor: smallest σ of every layer (see :class:`UGMMLayer`; 0 for none).

    Shape:
        - Input: (B, F)
        - Output: (B, C) logits (class log-densities)

    Example:
        >>> import torch
        >>> head = UGMMHead(16, 10, hidden=(8,))
        >>> head(torch.randn(4, 16)).shape
        torch.Size([4, 10])
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (),
        norm_layer: NormLayer | None = nn.LayerNorm,
        tied_means: bool = False,
        mixing_dropout: float | Sequence[float] = 0.0,
        init: UGMMInit = "unit",
        backend: UGMMBackend = "auto",
        sigma_floor: float = SIGMA_FLOOR,
    ) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        check_positive_int("num_classes", num_classes)
        widths = (in_features, *check_hidden(hidden), num_classes)
        self.in_features = in_features
        self.num_classes = num_classes
        self.norm = make_norm(norm_layer, in_features)
        self.layers = ugmm_stack(
            widths,
            tied_means=tied_means,
            mixing_dropout=mixing_dropout,
            init=init,
            backend=backend,
            sigma_floor=sigma_floor,
        )

    def forward_hidden(self, features: Tensor) -> list[Tensor]:
        """Every layer's log-densities, first hidden layer to the class layer (for inspection and OOD scores)."""
        return stack_outputs(self.layers, self.norm(features))

    def forward(self, features: Tensor) -> Tensor:
        return self.forward_hidden(features)[-1]
