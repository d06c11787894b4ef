"""Queries answered by evaluating a density model: brute-force most probable values, class-as-input prediction.

A uGMM network has no efficient most-probable-explanation algorithm (the paper's code brute-forces it too): the
model is evaluated once per combination of candidate values, all combinations in one batch. The functions take any
``log_prob(x, mask) -> (B,)`` callable, e.g. :meth:`UGMMNetwork.log_prob
<ugmm_vision.generative.UGMMNetwork.log_prob>`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from ugmm_vision.checks import check_int, is_int

__all__ = ["LogProbFn", "MostProbableValue", "most_probable_value", "predict_class"]

LogProbFn = Callable[[Tensor, Tensor | None], Tensor]
"""``log_prob(x (B, I), mask (B, I) or None) -> (B,)``."""


class MostProbableValue(NamedTuple):
    """Result of :func:`most_probable_value`.

    Attributes:
        values: the best candidate value(s) per row: (B,) for one variable, (B, V) for V variables.
        log_prob: the root log-density at the best combination, (B,).
        candidate_log_probs: the root log-density at every combination, (B, C); column ``c`` is ``combinations[c]``.
        combinations: every combination of candidate values, (C, V), in ``torch.cartesian_prod`` order (the last
            variable varies fastest).
    """

    values: Tensor
    log_prob: Tensor
    candidate_log_probs: Tensor
    combinations: Tensor


def _as_candidates(name: str, values: Tensor | Sequence[float], like: Tensor) -> Tensor:
    values = torch.as_tensor(values, dtype=like.dtype, device=like.device)
    if values.dim() != 1 or values.numel() == 0:
        raise ValueError(f"Expected `{name}` to be a non-empty 1-D set of values, got shape {tuple(values.shape)}")
    return values


def most_probable_value(
    log_prob: LogProbFn,
    x: Tensor,
    index: int | Sequence[int],
    candidates: Tensor | Sequence[float] | Sequence[Tensor],
    mask: Tensor | None = None,
) -> MostProbableValue:
    """The most probable value(s) of one or more discrete variables, by brute force over every combination.

    Every row of ``x`` is copied once per combination of candidate values, the variables at ``index`` are set to
    the combination (and marked observed), and the model is evaluated on all copies in one batch: C·B rows, where
    C is the product of the candidate-set sizes. The argmax over combinations is returned; ties go to the first
    combination. Call it with the model in eval mode: in training mode, mixing dropout makes the scores random.

    Args:
        log_prob: the model, ``log_prob(x, mask) -> (B,)``.
        x: inputs, shape (B, I); the values at ``index`` are ignored.
        index: the variable to fill in, or a sequence of V distinct variables (negative indices count from the end).
        candidates: for one variable, its candidate values (a 1-D tensor or a sequence of numbers); for V
            variables, a sequence of V such sets, one per variable.
        mask: optional boolean (B, I), True where a variable is missing and marginalised; the variables at
            ``index`` are always observed.

    Returns:
        :class:`MostProbableValue` (values, log_prob, candidate_log_probs, combinations).

    Example:
        >>> def log_prob(x, mask=None):  # peaks where x[1] = x[0] and x[2] = −x[0]
        ...     return -(x[:, 1] - x[:, 0]).square() - (x[:, 2] + x[:, 0]).square()
        >>> x = torch.tensor([[1.0, 0.0, 0.0], [-2.0, 0.0, 0.0]])
        >>> most_probable_value(log_prob, x, index=1, candidates=[-2.0, 0.0, 1.0]).values
        tensor([ 1., -2.])
        >>> most_probable_value(log_prob, x, index=[1, 2], candidates=[[-2.0, 1.0], [-1.0, 2.0]]).values
        tensor([[ 1., -1.],
                [-2.,  2.]])
    """
    if x.dim() != 2:
        raise ValueError(f"Expected `x` of shape (B, I), got shape {tuple(x.shape)}")
    batch, in_features = x.shape
    single = is_int(index)
    indices = [index] if single else list(index)  # type: ignore[arg-type]
    if not indices or not all(is_int(i) for i in indices):
        raise ValueError(f"Expected `index` to be an int or a non-empty sequence of ints, got {index!r}")
    if any(not -in_features <= i < in_features for i in indices):
        raise ValueError(f"Expected every `index` in [-{in_features}, {in_features}), got {index!r}")
    indices = [i % in_features for i in indices]
    if len(set(indices)) != len(indices):
        raise ValueError(f"Expected distinct variables in `index`, got {index!r}")
    if single:
        sets = [_as_candidates("candidates", candidates, x)]  # type: ignore[arg-type]
    else:
        if isinstance(candidates, Tensor) or len(candidates) != len(indices):
            raise ValueError(
                f"Expected `candidates` to be a sequence of {len(indices)} value sets (one per `index`), "
                f"got {type(candidates).__name__} of length {len(candidates)}"
            )
        sets = [_as_candidates(f"candidates[{v}]", c, x) for v, c in enumerate(candidates)]  # type: ignore[arg-type]
    if mask is not None and (mask.dtype != torch.bool or mask.shape != x.shape):
        raise ValueError(
            f"Expected `mask` to be a boolean tensor of shape {tuple(x.shape)}, got {mask.dtype} {tuple(mask.shape)}"
        )

    combinations = torch.cartesian_prod(*sets).reshape(-1, len(sets))  # (C, V)
    n_comb = combinations.shape[0]
    cols = torch.tensor(indices, device=x.device)  # (V,)
    filled = x.unsqueeze(0).repeat(n_comb, 1, 1)  # (C, B, I)
    filled[:, :, cols] = combinations.unsqueeze(1).expand(n_comb, batch, len(sets))  # (C, B, V)
    filled_mask = None
    if mask is not None:
        filled_mask = mask.clone()  # (B, I)
        filled_mask[:, cols] = False
        filled_mask = filled_mask.unsqueeze(0).expand(n_comb, batch, in_features)  # (C, B, I)
        filled_mask = filled_mask.reshape(n_comb * batch, in_features)  # (C·B, I)
    scores = log_prob(filled.reshape(n_comb * batch, in_features), filled_mask)  # (C·B,)
    scores = scores.reshape(n_comb, batch).transpose(0, 1)  # (B, C)
    best_log_prob, best = scores.max(dim=1)  # (B,), (B,)
    values = combinations[best]  # (B, V)
    return MostProbableValue(values.squeeze(-1) if single else values, best_log_prob, scores, combinations)


def predict_class(
    log_prob: LogProbFn,
    features: Tensor,
    num_classes: int,
    *,
    class_index: int | None = None,
    class_values: Tensor | Sequence[float] | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Class labels from a density model that saw the class as one of its input variables (the paper's Iris setup).

    The class variable is inserted into ``features`` at ``class_index`` and filled with each class's encoding in
    turn; the label whose encoding gives the highest root log-density wins.

    Args:
        log_prob: the model over the I = F + 1 variables, ``log_prob(x, mask) -> (B,)``.
        features: the other variables, shape (B, F), without the class column.
        num_classes: number of classes K.
        class_index: position of the class variable among the I variables (None: last, as in the paper).
        class_values: the value the class variable takes for each label, K values (None: the raw class indices
            0, 1, …, K−1, the paper's encoding).
        mask: optional boolean (B, F) over ``features``, True where a feature is missing and marginalised.

    Returns:
        Labels in 0 … K−1, shape (B,), dtype long.

    Example:
        >>> def log_prob(x, mask=None):  # the class variable should equal the first feature
        ...     return -(x[:, 0] - x[:, 1]).square()
        >>> predict_class(log_prob, torch.tensor([[2.2], [0.1]]), num_classes=3)
        tensor([2, 0])
    """
    check_int("num_classes", num_classes, low=2)
    if features.dim() != 2:
        raise ValueError(f"Expected `features` of shape (B, F), got shape {tuple(features.shape)}")
    n_features = features.shape[1]
    class_index = n_features if class_index is None else class_index
    if not is_int(class_index) or not 0 <= class_index <= n_features:
        raise ValueError(f"Expected `class_index` in [0, {n_features}] (the class's position), got {class_index!r}")
    if class_values is None:
        class_values = torch.arange(num_classes, dtype=features.dtype, device=features.device)
    class_values = _as_candidates("class_values", class_values, features)
    if class_values.numel() != num_classes:
        raise ValueError(f"Expected `class_values` with num_classes={num_classes} values, got {class_values.numel()}")
    if mask is not None and (mask.dtype != torch.bool or mask.shape != features.shape):
        raise ValueError(
            f"Expected `mask` to be a boolean tensor of shape {tuple(features.shape)} like `features`, "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )
    placeholder = features.new_zeros(features.shape[0], 1)  # (B, 1)
    x = torch.cat([features[:, :class_index], placeholder, features[:, class_index:]], dim=1)  # (B, F + 1)
    if mask is not None:
        observed = torch.zeros_like(placeholder, dtype=torch.bool)  # (B, 1)
        mask = torch.cat([mask[:, :class_index], observed, mask[:, class_index:]], dim=1)  # (B, F + 1)
    result = most_probable_value(log_prob, x, class_index, class_values, mask)
    return result.candidate_log_probs.argmax(dim=1)  # (B,) index of the class encoding = label
