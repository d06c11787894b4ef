"""Post-hoc temperature scaling (Guo et al. 2017): one scalar ``T > 0`` that divides the logits.

``T`` is fitted on held-out (validation) logits by minimising the negative log-likelihood of
``softmax(logits / T)``. Dividing by a positive scalar never changes the argmax, so accuracy is untouched while
confidences shrink (``T > 1``, an overconfident model) or grow (``T < 1``, an underconfident one). It applies
to any head's logits; for a uGMM head the logits are class log-densities and ``T`` flattens or sharpens the
class posterior exactly as it does for a linear head.

The optimiser is :class:`torch.optim.LBFGS` with a strong-Wolfe line search over ``log T`` (so ``T`` stays
positive), in float64. On separable data (every prediction right) the NLL keeps falling as ``T → 0`` and has no
minimum: the search then stops once the gradient vanishes, at some small ``T``. ``T`` is confined to
``[1e-4, 1e4]`` (beyond the bounds the objective is flat, so the search stops there).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ugmm_vision.checks import check_logits, check_positive_int, is_real

__all__ = ["TemperatureScaler", "fit_temperature"]

_T_MIN, _T_MAX = 1e-4, 1e4
_LOG_T_MIN, _LOG_T_MAX = math.log(_T_MIN), math.log(_T_MAX)


def _validate(logits: Tensor, targets: Tensor, max_iter: int) -> None:
    check_logits(logits)
    if logits.shape[0] < 1 or logits.shape[1] < 2:
        raise ValueError(
            f"Expected `logits` of shape (N, C) with N >= 1 and C >= 2 (a temperature cannot change one class), "
            f"got {tuple(logits.shape)}"
        )
    if not bool(torch.isfinite(logits).all()):
        raise ValueError(f"Expected `logits` with finite values, got {int((~torch.isfinite(logits)).sum())} inf")
    is_integer = isinstance(targets, Tensor) and not (
        targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool
    )
    if not is_integer or targets.dim() != 1:
        got = f"shape {tuple(targets.shape)} and dtype {targets.dtype}" if isinstance(targets, Tensor) else targets
        raise ValueError(f"Expected `targets` of shape ({logits.shape[0]},) with an integer dtype, got {got!r}")
    if targets.shape[0] != logits.shape[0]:
        raise ValueError(
            f"Expected `targets` of shape ({logits.shape[0]},) (one label per row of `logits`), "
            f"got {tuple(targets.shape)}"
        )
    num_classes = logits.shape[1]
    if not bool(((targets >= 0) & (targets < num_classes)).all()):
        lo, hi = targets.min().item(), targets.max().item()
        raise ValueError(f"Expected `targets` with class indices in [0, {num_classes - 1}], got [{lo}, {hi}]")
    check_positive_int("max_iter", max_iter)


def fit_temperature(logits: Tensor, targets: Tensor, *, max_iter: int = 100) -> float:
    """Temperature ``T`` minimising the NLL of ``softmax(logits / T)`` on held-out data.

    Fit on validation logits, then apply ``logits / T`` to any later logits of the same model
    (:class:`TemperatureScaler` does both). ``logits`` are detached and promoted to float64.

    Args:
        logits: class logits of a held-out set, shape (N, C) with C >= 2, finite.
        targets: class indices, shape (N,), integer dtype, values in [0, C).
        max_iter: largest number of L-BFGS iterations.

    Returns:
        The fitted temperature, a float in ``[1e-4, 1e4]`` (> 1: the model was overconfident; < 1: underconfident).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> logits = torch.randn(2000, 3, generator=g) * 2
        >>> targets = torch.multinomial(logits.softmax(-1), 1, generator=g).squeeze(1)  # calibrated: T ≈ 1
        >>> round(fit_temperature(5 * logits, targets), 1)  # five times overconfident: T ≈ 5
        5.0
    """
    _validate(logits, targets, max_iter)
    # Lightning evaluates under inference mode; its tensors cannot be saved for backward, so copy them outside it.
    with torch.inference_mode(False), torch.enable_grad():
        x = logits.detach().to(torch.float64, copy=True)  # (N, C)
        y = targets.detach().to(device=x.device, dtype=torch.long, copy=True)  # (N,)
        log_t = torch.zeros((), dtype=torch.float64, device=x.device, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [log_t],
            lr=1.0,
            max_iter=max_iter,
            tolerance_grad=1e-10,
            tolerance_change=1e-12,
            line_search_fn="strong_wolfe",
        )

        def closure() -> Tensor:
            optimizer.zero_grad()
            temperature = log_t.clamp(_LOG_T_MIN, _LOG_T_MAX).exp()  # flat beyond the bounds: the search stops
            loss = F.cross_entropy(x / temperature, y)
            loss.backward()
            return loss

        optimizer.step(closure)
    log_value = min(max(log_t.item(), _LOG_T_MIN), _LOG_T_MAX)
    return min(max(math.exp(log_value), _T_MIN), _T_MAX)  # exp(log(1e4)) may round just above 1e4


class TemperatureScaler(nn.Module):
    """Divides logits by a fitted temperature; a thin module over :func:`fit_temperature`.

    The temperature is a buffer (saved in ``state_dict``, moved by ``.to()``) and not a parameter: it is fitted
    by :meth:`fit` on held-out logits, never by the training optimiser.

    Args:
        temperature: initial temperature ``T > 0``; 1.0 leaves the logits unchanged until :meth:`fit` is called.
        device: device of the ``temperature`` buffer.
        dtype: dtype of the ``temperature`` buffer.

    Shape:
        - Input: (..., C) logits.
        - Output: (..., C) logits divided by ``T``, same dtype as the input.

    Example:
        >>> scaler = TemperatureScaler(temperature=2.0)
        >>> scaler(torch.tensor([[4.0, 0.0, -2.0]]))
        tensor([[ 2.,  0., -1.]])
    """

    temperature: Tensor

    def __init__(
        self,
        temperature: float = 1.0,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_temperature(temperature)
        self.register_buffer("temperature", torch.tensor(float(temperature), device=device, dtype=dtype))

    def fit(self, logits: Tensor, targets: Tensor, *, max_iter: int = 100) -> TemperatureScaler:
        """Fit the temperature on held-out logits (see :func:`fit_temperature`) and store it.

        Args:
            logits: class logits of a held-out set, shape (N, C) with C >= 2, finite.
            targets: class indices, shape (N,).
            max_iter: largest number of L-BFGS iterations.

        Returns:
            ``self``, so that ``TemperatureScaler().fit(val_logits, val_targets)`` reads as one step.

        Example:
            >>> logits, targets = torch.tensor([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]]), torch.tensor([0, 1, 1])
            >>> TemperatureScaler().fit(logits, targets).temperature > 1  # one confident mistake in three
            tensor(True)
        """
        value = fit_temperature(logits, targets, max_iter=max_iter)
        self.temperature.fill_(value)
        return self

    def forward(self, logits: Tensor) -> Tensor:
        """Return ``logits / T``."""
        if not isinstance(logits, Tensor) or not logits.is_floating_point():
            got = logits.dtype if isinstance(logits, Tensor) else type(logits).__name__
            raise ValueError(f"Expected `logits` to be a floating tensor, got {got}")
        return logits / self.temperature.to(logits.dtype)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature.item():.4g}"


def _check_temperature(temperature: float) -> None:
    if not is_real(temperature) or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"Expected `temperature` to be a finite number > 0, got {temperature!r}")
