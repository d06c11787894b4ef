"""Moved to :mod:`ugmm_vision.compare.plots` (the figures serve only the comparison); re-exported here for one
release."""

from ugmm_vision.compare.plots import plot_accuracy_vs_ece, plot_metric_bars

__all__ = ["plot_accuracy_vs_ece", "plot_metric_bars"]
