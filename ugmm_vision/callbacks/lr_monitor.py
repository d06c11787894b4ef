"""``LearningRateMonitor``: Lightning's, quiet instead of failing when a run has no logger."""

from __future__ import annotations

from typing import Any

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor as _LightningLearningRateMonitor

__all__ = ["LearningRateMonitor"]


class LearningRateMonitor(_LightningLearningRateMonitor):
    """Logs the learning rate of each named parameter group (``lr-AdamW/backbone``, ``lr-AdamW/head_no_decay``).

    Lightning's callback raises when the trainer has no logger; the shipped configs include it, and a run with
    ``--trainer.logger=false`` should still train, so here it then logs nothing. Arguments as Lightning's.

    Example:
        >>> trainer = Trainer(logger=False, callbacks=[LearningRateMonitor()], enable_progress_bar=False)
        >>> LearningRateMonitor(logging_interval="epoch").logging_interval
        'epoch'
    """

    def on_train_start(self, trainer: Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_start(trainer, *args, **kwargs)

    def on_train_batch_start(self, trainer: Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_batch_start(trainer, *args, **kwargs)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_epoch_start(trainer, pl_module, *args, **kwargs)
