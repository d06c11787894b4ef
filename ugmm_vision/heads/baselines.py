"""Ordinary heads to compare uGMM heads against: linear, and an MLP that can be sized to a parameter budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from ugmm_vision.checks import check_positive_int
from ugmm_vision.heads._common import NormLayer, count_parameters, make_norm
from ugmm_vision.layers.stack import check_hidden

__all__ = ["LinearHead", "MLPHead", "ParamMatchedMLPHead"]


class LinearHead(nn.Module):
    """Normalisation then one ``nn.Linear``: the standard classifier head.

    Args:
        in_features: width F of the features.
        num_classes: number of classes C.
        norm_layer: normalisation of the features (LayerNorm by default, as in :class:`UGMMHead`, so both heads
            see the same inputs); None for a plain linear layer.

    Shape:
        - Input: (B, F)
        - Output: (B, C) logits

    Example:
        >>> import torch
        >>> LinearHead(8, 3)(torch.randn(2, 8)).shape
        torch.Size([2, 3])
    """

    def __init__(self, in_features: int, num_classes: int, norm_layer: NormLayer | None = nn.LayerNorm) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        check_positive_int("num_classes", num_classes)
        self.in_features = in_features
        self.num_classes = num_classes
        self.norm = make_norm(norm_layer, in_features)
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, features: Tensor) -> Tensor:
        return self.fc(self.norm(features))


class MLPHead(nn.Module):
    """Normalisation, hidden ``Linear → activation → dropout`` blocks, then a linear class layer.

    Args:
        in_features: width F of the features.
        num_classes: number of classes C.
        hidden: hidden widths; empty gives a linear head.
        norm_layer: normalisation of the features (LayerNorm by default); None for none.
        act_layer: activation type, instantiated once per hidden layer.
        dropout: dropout probability after each activation.

    Shape:
        - Input: (B, F)
        - Output: (B, C) logits

    Example:
        >>> import torch
        >>> MLPHead(8, 3, hidden=(16,))(torch.randn(2, 8)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (256,),
        norm_layer: NormLayer | None = nn.LayerNorm,
        act_layer: Callable[[], nn.Module] = nn.ReLU,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        check_positive_int("num_classes", num_classes)
        hidden = check_hidden(hidden)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Expected `dropout` in [0, 1), got {dropout}")
        self.in_features = in_features
        self.num_classes = num_classes
        self.hidden = hidden
        self.norm = make_norm(norm_layer, in_features)
        blocks: list[nn.Module] = []
        width = in_features
        for h in hidden:
            blocks += [nn.Linear(width, h), act_layer(), nn.Dropout(dropout)]
            width = h
        blocks.append(nn.Linear(width, num_classes))
        self.mlp = nn.Sequential(*blocks)

    def forward(self, features: Tensor) -> Tensor:
        return self.mlp(self.norm(features))

    @classmethod
    def matching(
        cls,
        params: int,
        in_features: int,
        num_classes: int,
        depth: int = 1,
        *,
        tolerance: float = 0.02,
        norm_layer: NormLayer | None = nn.LayerNorm,
        **kwargs,
    ) -> MLPHead:
        """An MLP with ``depth`` equal-width hidden layers whose parameter count is closest to ``params``.

        Used for fair comparisons: pass ``count_parameters(ugmm_head)``. Raises ``ValueError`` if no width comes
        within ``tolerance`` (relative) of the target, e.g. when the target is smaller than a width-1 MLP.

        Example:
            >>> from ugmm_vision.heads import UGMMHead, count_parameters
            >>> target = count_parameters(UGMMHead(128, 10))
            >>> mlp = MLPHead.matching(target, 128, 10, depth=1)
            >>> abs(count_parameters(mlp) - target) / target < 0.02
            True
        """
        check_positive_int("params", params)
        check_positive_int("depth", depth)

        def build(width: int) -> MLPHead:
            return cls(in_features, num_classes, hidden=(width,) * depth, norm_layer=norm_layer, **kwargs)

        norm_params = count_parameters(make_norm(norm_layer, in_features))

        def _mlp_size(width: int) -> int:  # closed form, avoids allocating huge candidates while searching
            return (
                norm_params
                + in_features * width
                + width
                + (depth - 1) * (width * width + width)
                + width * num_classes
                + num_classes
            )

        lo, hi = 1, 1
        while _mlp_size(hi) < params:
            hi *= 2
        while lo < hi:  # smallest width whose size reaches the target
            mid = (lo + hi) // 2
            if _mlp_size(mid) < params:
                lo = mid + 1
            else:
                hi = mid
        width = min((w for w in (lo - 1, lo) if w >= 1), key=lambda w: abs(_mlp_size(w) - params))
        mlp = build(width)
        actual = count_parameters(mlp)
        if abs(actual - params) > tolerance * params:
            raise ValueError(
                f"No MLP of depth {depth} comes within {tolerance:.0%} of `params`={params} "
                f"(closest: width {width} with {actual} parameters)"
            )
        return mlp


class ParamMatchedMLPHead(MLPHead):
    """An :class:`MLPHead` sized to the parameter count of a given :class:`UGMMHead` (within 2 %).

    A class rather than a function so that configs can name it with ``class_path`` like any other head; the
    comparison's "MLP of the same size".

    Args:
        in_features: width F of the features.
        num_classes: number of classes C.
        match_hidden: hidden widths of the uGMM head to match.
        match_tied_means: whether that uGMM head ties its means.
        depth: number of equal-width hidden layers of the MLP.
        norm_layer: normalisation of the features, shared by both heads when counting.
        act_layer: activation type.
        dropout: dropout after each activation.

    Example:
        >>> from ugmm_vision.heads import UGMMHead, count_parameters
        >>> mlp = ParamMatchedMLPHead(128, 10, match_hidden=(32,))
        >>> target = count_parameters(UGMMHead(128, 10, hidden=(32,)))
        >>> abs(count_parameters(mlp) - target) <= 0.02 * target
        True
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        match_hidden: Sequence[int] = (),
        match_tied_means: bool = False,
        depth: int = 1,
        norm_layer: NormLayer | None = nn.LayerNorm,
        act_layer: Callable[[], nn.Module] = nn.ReLU,
        dropout: float = 0.0,
    ) -> None:
        from ugmm_vision.heads.ugmm_head import UGMMHead  # a heads-internal import, kept local to avoid a cycle

        reference = UGMMHead(
            in_features, num_classes, hidden=match_hidden, norm_layer=norm_layer, tied_means=match_tied_means
        )
        sized = MLPHead.matching(
            count_parameters(reference), in_features, num_classes, depth=depth, norm_layer=norm_layer
        )
        super().__init__(
            in_features, num_classes, hidden=sized.hidden, norm_layer=norm_layer, act_layer=act_layer, dropout=dropout
        )
        self.matched_parameters = count_parameters(reference)
