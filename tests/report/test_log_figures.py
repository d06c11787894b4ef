"""Report figures reach loggers that take images (TensorBoard's add_figure, or a log_image method)."""

import numpy as np
from lightning.pytorch.loggers import Logger
from matplotlib.figure import Figure

from ugmm_vision.report.canvas import log_figures


class ImageLogger(Logger):
    """A logger with a W&B-style ``log_image(key, images)``."""

    name, version = "images", 0

    def __init__(self):
        super().__init__()
        self.images = {}

    def log_metrics(self, metrics, step=None):
        pass

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_image(self, key, images):
        self.images[key] = images


class FigureExperiment:
    def __init__(self):
        self.figures = {}

    def add_figure(self, tag, figure, global_step=None):
        self.figures[tag] = (figure, global_step)


class TensorBoardLike(ImageLogger):
    def __init__(self):
        super().__init__()
        self._experiment = FigureExperiment()

    @property
    def experiment(self):
        return self._experiment


class FakeTrainer:
    def __init__(self, loggers):
        self.loggers, self.global_step = loggers, 7


def test_figures_are_logged_as_images_or_figures():
    figure = Figure(figsize=(2, 1), dpi=50)
    figure.add_subplot().plot([0, 1], [0, 1])
    image_logger, board = ImageLogger(), TensorBoardLike()
    log_figures(FakeTrainer([image_logger, board]), {"reliability": figure})
    (array,) = image_logger.images["report/reliability"]
    assert isinstance(array, np.ndarray) and array.shape == (50, 100, 3) and array.dtype == np.uint8
    assert board.experiment.figures == {"report/reliability": (figure, 7)}  # add_figure preferred over log_image
    assert board.images == {}
