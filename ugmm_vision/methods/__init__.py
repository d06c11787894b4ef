"""Uncertainty methods beside uGMM heads: MC dropout, deep ensembles, DDU feature density, Laplace, conformal sets.

See ``docs/methods.md``; each module's docstring says which library it uses and why.
"""

from ugmm_vision.methods.base import UncertaintyMethod, base_head
from ugmm_vision.methods.conformal import (
    aps_scores,
    conformal_metrics,
    conformal_quantile,
    conformal_report,
    prediction_sets,
)
from ugmm_vision.methods.ensemble import DeepEnsemble, member_seed
from ugmm_vision.methods.feature_density import (
    ClassGaussians,
    FeatureDensity,
    class_gaussian_log_density,
    fit_class_gaussians,
    log_marginal_density,
)
from ugmm_vision.methods.laplace import LastLayerLaplace, head_last_layer_is_linear
from ugmm_vision.methods.mc_dropout import FeatureDropoutHead, MCDropout, dropout_enabled
from ugmm_vision.methods.predictive import (
    member_disagreement,
    mutual_information,
    predictive_log_probs,
    sample_scores,
)

__all__ = [
    "ClassGaussians",
    "DeepEnsemble",
    "FeatureDensity",
    "FeatureDropoutHead",
    "LastLayerLaplace",
    "MCDropout",
    "UncertaintyMethod",
    "aps_scores",
    "base_head",
    "class_gaussian_log_density",
    "conformal_metrics",
    "conformal_quantile",
    "conformal_report",
    "dropout_enabled",
    "fit_class_gaussians",
    "head_last_layer_is_linear",
    "log_marginal_density",
    "member_disagreement",
    "member_seed",
    "mutual_information",
    "prediction_sets",
    "predictive_log_probs",
    "sample_scores",
]
