"""``NaNGuard``: stop training with a clear message as soon as the loss, a parameter or a monitored metric is NaN/Inf.

What Lightning already has, and why this callback exists beside it:

* ``Trainer(detect_anomaly=True)`` turns on ``torch.autograd.set_detect_anomaly``: it finds the backward op that
  produced a NaN, at several times the cost of a step — a debugging tool, not a guard to leave on;
* ``EarlyStopping(check_finite=True)`` stops when the *monitored metric* is NaN/Inf, after a validation; it does not
  look at the loss or the weights, and ``ModelCheckpoint`` still saves in that same validation (a NaN score counts
  as the worst, but the first checkpoint is saved whatever its score, and ``save_last`` always saves).

``NaNGuard`` checks the training loss after every step, the parameters and floating-point buffers (BatchNorm's
running statistics overflow to Inf before the weights do) every ``check_every_n_steps`` steps, and
after each validation every metric that a ``ModelCheckpoint`` or ``EarlyStopping`` monitors. Lightning runs
checkpoint callbacks after all others, so the guard raises before any checkpoint of the diverged weights is
written: "best" and "last" keep the last finite state. Under DDP the processes agree on each check
(``strategy.reduce_boolean_decision``), so all of them stop together instead of leaving the others waiting.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch import Tensor

from ugmm_vision.checks import check_positive_int

__all__ = ["NaNGuard", "NonFiniteTrainingError"]

_HINT = (
    "Lower the learning rate, clip gradients (--trainer.gradient_clip_val=1.0), or check the data for NaN/Inf "
    "(ImageClassifier(bad_batch=...))."
)


class NonFiniteTrainingError(RuntimeError):
    """Training produced a NaN or infinite loss, parameter or monitored metric; raised by :class:`NaNGuard`."""


class NaNGuard(Callback):
    """Stop training, with a message saying what became NaN/Inf and where, before a checkpoint of it is saved.

    Args:
        check_loss: check the training loss after every step.
        check_parameters: check every parameter and floating-point buffer for NaN/Inf (one reduction per tensor
            and one host sync).
        check_every_n_steps: check the parameters every this many optimiser steps (1: after every step).
        check_monitored: after each validation, check the metrics monitored by ``ModelCheckpoint`` and
            ``EarlyStopping`` callbacks.

    Raises:
        NonFiniteTrainingError: from ``trainer.fit`` when a check fails. The trainer's checkpoints are the last
            ones saved before, all from finite weights.

    Example:
        >>> import torch
        >>> from lightning import Trainer
        >>> guard = NaNGuard(check_every_n_steps=10)
        >>> guard.nonfinite_tensors(torch.nn.BatchNorm1d(2))
        []
    """

    def __init__(
        self,
        check_loss: bool = True,
        check_parameters: bool = True,
        check_every_n_steps: int = 1,
        check_monitored: bool = True,
    ) -> None:
        check_positive_int("check_every_n_steps", check_every_n_steps)
        self.check_loss = check_loss
        self.check_parameters = check_parameters
        self.check_every_n_steps = check_every_n_steps
        self.check_monitored = check_monitored

    @staticmethod
    def nonfinite_tensors(module: torch.nn.Module) -> list[str]:
        """Names of the parameters and floating-point buffers of ``module`` holding a NaN or Inf (one host sync)."""
        tensors = [*module.named_parameters(), *module.named_buffers()]
        named = [(name, t) for name, t in tensors if t.is_floating_point() and t.numel()]
        if not named:
            return []
        finite = torch.stack([p.detach().isfinite().all() for _, p in named])  # (P,) one flag per tensor
        if bool(finite.all()):
            return []
        return [name for (name, _), ok in zip(named, finite.tolist(), strict=True) if not ok]

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        problem = None
        if self.check_loss:
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            if isinstance(loss, Tensor) and not bool(loss.detach().isfinite().all()):
                problem = f"the training loss is {loss.detach().float().item()}"
        if problem is None and self.check_parameters and trainer.global_step % self.check_every_n_steps == 0:
            bad = self.nonfinite_tensors(pl_module)
            if bad:
                shown = ", ".join(bad[:5]) + (", …" if len(bad) > 5 else "")
                problem = f"{len(bad)} parameter or buffer tensor(s) hold NaN or Inf ({shown})"
        self._check(trainer, problem)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.check_monitored or trainer.sanity_checking:
            return
        monitors = {
            cb.monitor
            for cb in trainer.callbacks
            if isinstance(cb, (ModelCheckpoint, EarlyStopping)) and getattr(cb, "monitor", None)
        }
        problem = None
        for key in sorted(monitors):
            value = trainer.callback_metrics.get(key)
            if value is not None and not math.isfinite(float(value)):
                problem = f"the monitored metric {key!r} is {float(value)} after validation"
                break
        self._check(trainer, problem)

    def _check(self, trainer: Trainer, problem: str | None) -> None:
        """Stop every process if any found a problem (a no-op collective on one device)."""
        if trainer.world_size > 1:
            if trainer.strategy.reduce_boolean_decision(problem is not None, all=False) and problem is None:
                problem = "another process found a NaN or Inf"
        if problem is not None:
            self._stop(trainer, problem)

    def _stop(self, trainer: Trainer, what: str) -> None:
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") if trainer.checkpoint_callback else ""
        kept = f" The best checkpoint so far, {best}, is from before and holds finite weights." if best else ""
        raise NonFiniteTrainingError(
            f"NaNGuard stopped training at epoch {trainer.current_epoch}, step {trainer.global_step}: {what}; "
            f"no checkpoint of these weights was saved.{kept} {_HINT}"
        )
