"""Pure functions: the uGMM log-density and metric maths."""

from ugmm_vision.functional.backend import UGMMBackend, check_backend, resolve_backend
from ugmm_vision.functional.calibration import (
    ReliabilityDiagram,
    adaptive_calibration_error,
    classwise_calibration_error,
    expected_calibration_error,
    reliability_diagram_data,
)
from ugmm_vision.functional.ood import fpr_at_tpr, ood_aupr, ood_auroc
from ugmm_vision.functional.proper_scoring import brier_score, negative_log_likelihood
from ugmm_vision.functional.scores import (
    SCORES,
    compute_scores,
    density_logsumexp,
    density_max,
    energy_score,
    hidden_density_sum,
    max_logit,
    max_softmax_probability,
    negative_entropy,
)
from ugmm_vision.functional.selective import (
    RiskCoverageCurve,
    augrc,
    aurc,
    coverage_at_risk,
    risk_at_coverage,
    risk_coverage_curve,
)
from ugmm_vision.functional.ugmm import (
    HALF_LOG_2PI,
    clamp_log_sigma,
    mixing_dropout,
    ugmm_component_log_terms,
    ugmm_log_prob,
    ugmm_log_prob_reference,
    validate_ugmm_args,
)

__all__ = [
    "HALF_LOG_2PI",
    "SCORES",
    "ReliabilityDiagram",
    "RiskCoverageCurve",
    "UGMMBackend",
    "adaptive_calibration_error",
    "augrc",
    "aurc",
    "brier_score",
    "check_backend",
    "clamp_log_sigma",
    "classwise_calibration_error",
    "compute_scores",
    "coverage_at_risk",
    "density_logsumexp",
    "density_max",
    "energy_score",
    "expected_calibration_error",
    "fpr_at_tpr",
    "hidden_density_sum",
    "max_logit",
    "max_softmax_probability",
    "mixing_dropout",
    "negative_entropy",
    "negative_log_likelihood",
    "ood_aupr",
    "ood_auroc",
    "reliability_diagram_data",
    "resolve_backend",
    "risk_at_coverage",
    "risk_coverage_curve",
    "ugmm_component_log_terms",
    "ugmm_log_prob",
    "ugmm_log_prob_reference",
    "validate_ugmm_args",
]
