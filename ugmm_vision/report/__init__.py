"""Evaluation reports: metrics over named sets, figures (reliability, risk–coverage, OOD histograms, shift curves),
neuron figures (components, responsibilities, class density maps, mixing weights, σ), and safe JSON/Markdown/PNG
writing."""

from ugmm_vision.report.evaluate import evaluate_model, report_figures
from ugmm_vision.report.evaluation import EvalOutputs, build_report, classification_metrics, ood_metrics, shift_metrics
from ugmm_vision.report.io import (
    atomic_write_bytes,
    atomic_write_text,
    markdown_table,
    save_figure,
    to_jsonable,
    write_json,
)
from ugmm_vision.report.markdown import report_markdown, report_summary_rows
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
)

__all__ = [
    "EvalOutputs",
    "atomic_write_bytes",
    "atomic_write_text",
    "build_report",
    "classification_metrics",
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
