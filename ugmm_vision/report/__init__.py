"""Evaluation reports, one module per job:

* :mod:`~ugmm_vision.report.evaluate` — :func:`evaluate_model`, the whole evaluation of a trained classifier;
* :mod:`~ugmm_vision.report.collect` — the model's outputs over named sets (Lightning's predict loop), gathered
  across processes (:func:`all_gather_objects`);
* :mod:`~ugmm_vision.report.build` — from those outputs to the report: metrics over named sets (:func:`build_report`);
* :mod:`~ugmm_vision.report.plots` and :mod:`~ugmm_vision.report.neuron_plots` — figures (reliability, risk–coverage,
  OOD histograms, shift curves; components, responsibilities, class density maps, mixing weights, σ), on the
  canvas of :mod:`~ugmm_vision.report.canvas` (:func:`save_figure`);
* :mod:`~ugmm_vision.report.folder` and :mod:`~ugmm_vision.report.markdown` — the report folder and its Markdown.

The generic writers (atomic writes, JSON: :mod:`ugmm_vision.io`; output paths checked first and folders replaced
as one: :mod:`ugmm_vision.destinations`) are on the package's ground floor; the writers are re-exported here.
"""

from ugmm_vision.io import atomic_write_bytes, atomic_write_text, to_jsonable, write_json
from ugmm_vision.report.build import EvalOutputs, build_report, classification_metrics, ood_metrics, shift_metrics
from ugmm_vision.report.canvas import save_figure
from ugmm_vision.report.collect import all_gather_objects, collect_outputs
from ugmm_vision.report.evaluate import evaluate_model
from ugmm_vision.report.markdown import markdown_table, report_markdown, report_summary_rows
from ugmm_vision.report.neuron_plots import (
    plot_class_density_map,
    plot_mixing_weights_heatmap,
    plot_neuron_components,
    plot_responsibilities,
    plot_sigma_distribution,
)
from ugmm_vision.report.plots import (
    plot_reliability_diagram,
    plot_risk_coverage,
    plot_score_histograms,
    plot_shift_curves,
    report_figures,
)

__all__ = [
    "EvalOutputs",
    "all_gather_objects",
    "atomic_write_bytes",
    "atomic_write_text",
    "build_report",
    "classification_metrics",
    "collect_outputs",
    "evaluate_model",
    "markdown_table",
    "ood_metrics",
    "plot_class_density_map",
    "plot_mixing_weights_heatmap",
    "plot_neuron_components",
    "plot_reliability_diagram",
    "plot_responsibilities",
    "plot_risk_coverage",
    "plot_score_histograms",
    "plot_shift_curves",
    "plot_sigma_distribution",
    "report_figures",
    "report_markdown",
    "report_summary_rows",
    "save_figure",
    "shift_metrics",
    "to_jsonable",
    "write_json",
]
