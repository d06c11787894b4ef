"""``quiet_trainer``: a Lightning ``Trainer`` for runs inside a program (comparison runs, benchmarks, tests).

A run that is one of many writes nothing of its own and prints nothing: no logger, no checkpoints, no progress
bar, no model summary. The comparison (:mod:`ugmm_vision.compare`), the benchmarks, the test suite and
``docs/images/make_images.py`` build their trainers here instead of repeating those four settings.
"""

from __future__ import annotations

from typing import Any

from lightning import Trainer

__all__ = ["QUIET_TRAINER_SETTINGS", "quiet_trainer"]

QUIET_TRAINER_SETTINGS: dict[str, Any] = {
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
}
"""What :func:`quiet_trainer` turns off (any of them may be given back as an argument)."""


def quiet_trainer(**kwargs: Any) -> Trainer:
    """A ``Trainer`` without logger, checkpoints, progress bar or model summary; ``kwargs`` add or override.

    Args:
        **kwargs: further ``Trainer`` arguments (``max_epochs``, ``accelerator``, ``callbacks``, …); a given
            ``logger`` or ``enable_*`` setting replaces the quiet default.

    Returns:
        The trainer.

    Example:
        >>> trainer = quiet_trainer(max_epochs=2, accelerator="cpu")
        >>> trainer.max_epochs, trainer.logger is None, trainer.checkpoint_callback is None
        (2, True, True)
    """
    return Trainer(**{**QUIET_TRAINER_SETTINGS, **kwargs})
