"""The fair head comparison: same backbone, data and budget; several seeds; quality and cost side by side."""

from ugmm_vision.compare.plots import plot_accuracy_vs_ece, plot_metric_bars
from ugmm_vision.compare.runner import ComparisonMode, run_comparison
from ugmm_vision.compare.summary import COLUMNS, run_figures, summarize, summary_markdown
from ugmm_vision.compare.writer import compare_heads, write_comparison

__all__ = [
    "COLUMNS",
    "ComparisonMode",
    "compare_heads",
    "plot_accuracy_vs_ece",
    "plot_metric_bars",
    "run_comparison",
    "run_figures",
    "summarize",
    "summary_markdown",
    "write_comparison",
]
