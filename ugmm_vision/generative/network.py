"""``UGMMNetwork``: a stack of uGMM layers over observed variables, read as a density model (the paper's Iris setup).

The first layer's neurons are mixtures of univariate Gaussians over the observed variables; every later layer is a
mixture over the log-densities of the layer before; the last layer is one root neuron whose output is the model's
score ``log p(x)`` (docs/maths.md §1). Trained by minimising the root's negative log-density, the network answers
queries by evaluating the root: marginals (mask a variable out of the first layer) and most probable values
(brute force over candidate values, :mod:`ugmm_vision.generative.inference`).

What the root value is, and where marginalisation means something: each component of a first-layer neuron is a
univariate density over its own variable ``x[k]``, so marginalising ``x[k]`` replaces that Gaussian by its integral,
1 (docs/maths.md §2), exactly. (A neuron is not a density normalised over the whole vector ``x``; it is a mixture of
leaves with different scopes, as in a non-smooth probabilistic circuit.) Deeper layers place Gaussians on
log-densities, not on observed variables: the root value of a deep network is a learned score of ``x`` (higher =
more like the training data), not a normalised density, and a mask has nothing to act on there. So ``mask`` applies
to the first layer only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ugmm_vision.checks import check_positive_int
from ugmm_vision.functional.backend import UGMMBackend
from ugmm_vision.generative.inference import MostProbableValue, most_probable_value, predict_class
from ugmm_vision.layers.stack import check_hidden, stack_outputs, ugmm_stack
from ugmm_vision.layers.ugmm import SIGMA_FLOOR, UGMMInit

__all__ = ["UGMMNetwork"]


class UGMMNetwork(nn.Module):
    """A uGMM density network: ``in_features`` observed variables → hidden uGMM layers → one root neuron.

    ``UGMMNetwork(5, hidden=(10, 5))`` is the paper's Iris network 5-10-5-1 (four features and the class as a fifth
    variable). Missing inputs are marginalised in the first layer (see the module docstring for what that means and
    why only there).

    Args:
        in_features: number of observed variables I.
        hidden: widths of the hidden uGMM layers between the variables and the root (empty: one layer, a single
            mixture over the variables).
        tied_means: tie each layer's means across its neurons (see :class:`~ugmm_vision.layers.UGMMLayer`).
        mixing_dropout: component dropout probability in training, one value for every layer or one per layer
            (``len(hidden) + 1`` values).
        init: parameter initialisation of the layers; ``"paper"`` (the reference code's, the default here because
            the generative experiment is the paper's) or ``"unit"``.
        backend: how the layers compute (``"auto"``, ``"fused"``, ``"reference"``; see
            :func:`~ugmm_vision.functional.ugmm_log_prob`).
        sigma_floor: smallest σ of every layer (see :class:`~ugmm_vision.layers.UGMMLayer`; 0 for none).
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: (B, I) and optionally a boolean ``mask`` (B, I), True where a variable is missing.
        - Output: (B,) root log-densities.

    Example:
        >>> net = UGMMNetwork(5, hidden=(10, 5))
        >>> net.log_prob(torch.randn(4, 5)).shape
        torch.Size([4])
        >>> [tuple(layer.log_sigma.shape) for layer in net.layers]
        [(10, 5), (5, 10), (1, 5)]
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (10, 5),
        *,
        tied_means: bool = False,
        mixing_dropout: float | Sequence[float] = 0.0,
        init: UGMMInit = "paper",
        backend: UGMMBackend = "auto",
        sigma_floor: float = SIGMA_FLOOR,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        self.in_features = in_features
        self.hidden = check_hidden(hidden)
        self.layers = ugmm_stack(
            (in_features, *self.hidden, 1),  # ends in ONE root neuron
            tied_means=tied_means,
            mixing_dropout=mixing_dropout,
            init=init,
            backend=backend,
            sigma_floor=sigma_floor,
            device=device,
            dtype=dtype,
        )

    def _check_inputs(self, x: Tensor, mask: Tensor | None) -> None:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Expected `x` of shape (B, {self.in_features}), got {tuple(x.shape)}")
        if mask is not None and (mask.dtype != torch.bool or mask.shape != x.shape):
            raise ValueError(
                f"Expected `mask` to be a boolean tensor of shape {tuple(x.shape)} (True = missing), "
                f"got {mask.dtype} of shape {tuple(mask.shape)}"
            )

    def forward_hidden(self, x: Tensor, mask: Tensor | None = None) -> list[Tensor]:
        """Every layer's log-densities, first layer to the root; ``mask`` acts on the first layer only.

        Returns:
            One (B, width) tensor per layer; the last is (B, 1).
        """
        self._check_inputs(x, mask)
        if mask is not None:
            # A missing variable's value is never read; clear it so NaN placeholders cannot leak into gradients.
            x = x.masked_fill(mask, 0.0)  # (B, I)
        return stack_outputs(self.layers, x, mask)

    def log_prob(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Root log-density of each row of ``x``, marginalising the variables that ``mask`` marks missing.

        Args:
            x: observed variables, shape (B, I). Values at missing positions are ignored (they may be NaN).
            mask: optional boolean (B, I), True where a variable is missing. Marginalisation happens in the first
                layer, the only one whose inputs are observed variables: a missing variable's component contributes
                ``log π`` alone (its Gaussian integrates to one).

        Returns:
            Log-densities, shape (B,).

        Example:
            >>> net = UGMMNetwork(3, hidden=())
            >>> x = torch.tensor([[0.5, float("nan"), -1.0]])
            >>> net.log_prob(x, mask=torch.isnan(x)).isfinite().item()
            True
        """
        return self.forward_hidden(x, mask)[-1].squeeze(-1)  # (B, 1) → (B,)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.log_prob(x, mask)

    def nll_loss(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Mean negative root log-density over the batch: the generative training loss.

        Example:
            >>> net = UGMMNetwork(2, hidden=(3,))
            >>> net.nll_loss(torch.zeros(8, 2)).dim()
            0
        """
        return -self.log_prob(x, mask).mean()

    def most_probable_value(
        self,
        x: Tensor,
        index: int | Sequence[int],
        candidates: Tensor | Sequence[float] | Sequence[Tensor],
        mask: Tensor | None = None,
    ) -> MostProbableValue:
        """Brute-force most probable value(s) of one or more discrete variables given the others.

        See :func:`~ugmm_vision.generative.inference.most_probable_value`.

        Example:
            >>> net = UGMMNetwork(3, hidden=(4,))
            >>> best = net.most_probable_value(torch.randn(2, 3), index=2, candidates=torch.tensor([0.0, 1.0, 2.0]))
            >>> best.values.shape, best.log_prob.shape, best.candidate_log_probs.shape
            (torch.Size([2]), torch.Size([2]), torch.Size([2, 3]))
        """
        return most_probable_value(self.log_prob, x, index, candidates, mask)

    def predict_class(self, features: Tensor, num_classes: int, **options: Any) -> Tensor:
        """Class labels for the paper's class-as-input setup: the most probable value of the class variable.

        See :func:`~ugmm_vision.generative.inference.predict_class`, whose keyword arguments (``class_index``,
        ``class_values``, ``mask``) ``options`` passes on.

        Example:
            >>> net = UGMMNetwork(5, hidden=(10, 5))
            >>> net.predict_class(torch.randn(4, 4), num_classes=3).shape
            torch.Size([4])
        """
        return predict_class(self.log_prob, features, num_classes, **options)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, hidden={self.hidden}"
