"""What every report figure shares: a figure on the Agg canvas, rendering it to bytes, files, pixels and loggers.

Figures are built without :mod:`matplotlib.pyplot`, so no global figure registry fills up and nothing needs
``plt.close``. :mod:`ugmm_vision.report.plots`, :mod:`ugmm_vision.report.neuron_plots` and
:mod:`ugmm_vision.compare.plots` start their figures with :func:`new_figure`; the report and comparison folders
render them with :func:`figure_bytes`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from ugmm_vision.io import PathLike, atomic_write_bytes

__all__ = ["as_numpy", "figure_bytes", "figure_to_array", "log_figures", "new_figure", "save_figure"]


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` × ``height`` inches, constrained layout, on its own Agg canvas.

    Example:
        >>> new_figure(4.0, 3.0).get_size_inches().tolist()
        [4.0, 3.0]
    """
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # attach the Agg canvas: renders without a display, independent of the pyplot backend
    return fig


def as_numpy(x: Tensor) -> np.ndarray:
    """A tensor as a float64 numpy array on the CPU (what matplotlib draws)."""
    return x.detach().cpu().double().numpy()


def figure_bytes(fig: Figure, fmt: str = "png", *, dpi: int = 150) -> bytes:
    """``fig`` rendered in memory as a ``fmt`` file (``png``, ``pdf``, ``svg``).

    Example:
        >>> figure_bytes(new_figure(1, 1), dpi=20)[:4]
        b'\\x89PNG'
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi)
    return buffer.getvalue()


def save_figure(fig: Figure, path: PathLike, *, dpi: int = 150) -> Path:
    """Render ``fig`` in memory and write it to ``path`` atomically; the format comes from the suffix.

    Args:
        fig: the figure to save (it is not closed; figures built by :mod:`ugmm_vision.report.plots` are not
            registered with pyplot, so they are freed like any other object).
        path: destination, e.g. ``reliability.png``; ``.png``, ``.pdf`` and ``.svg`` work.
        dpi: resolution of raster formats.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> import tempfile
        >>> fig = Figure(figsize=(1, 1))
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     save_figure(fig, Path(folder) / "empty.png", dpi=20).read_bytes()[:4]
        b'\\x89PNG'
    """
    if not isinstance(fig, Figure):
        raise ValueError(f"Expected `fig` to be a matplotlib Figure, got {type(fig).__name__}")
    target = Path(path)
    data = figure_bytes(fig, target.suffix.lstrip(".").lower() or "png", dpi=dpi)  # rendered before any write
    return atomic_write_bytes(target, data)


def figure_to_array(fig: Figure) -> np.ndarray:
    """The figure's pixels, (H, W, 3) RGB ``uint8``.

    Example:
        >>> figure_to_array(new_figure(1, 1)).shape[-1]
        3
    """
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3) RGB


def log_figures(trainer: Any, figures: dict[str, Figure], prefix: str = "report/") -> None:
    """Log ``figures`` by name to the trainer's loggers that take images.

    TensorBoard's ``experiment.add_figure`` gets the figure; W&B- and Neptune-style loggers with a
    ``log_image(key, images)`` method get its pixels (:func:`figure_to_array`). Other loggers are skipped.
    """
    for logger in trainer.loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_figure"):  # TensorBoard
            for name, figure in figures.items():
                experiment.add_figure(f"{prefix}{name}", figure, global_step=trainer.global_step)
        elif hasattr(logger, "log_image"):  # W&B, Neptune-style loggers
            for name, figure in figures.items():
                logger.log_image(key=f"{prefix}{name}", images=[figure_to_array(figure)])
