"""From outputs on named evaluation sets to one report: accuracy, calibration, selective prediction, OOD, shift.

Pure computation over :class:`EvalOutputs`; collecting them from a model (Lightning's predict loop, gathered across
processes) is :mod:`ugmm_vision.report.collect`, the whole evaluation with its folder
:func:`~ugmm_vision.report.evaluate_model`. Every number comes from :mod:`ugmm_vision.functional`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from torch import Tensor

from ugmm_vision.calibration import fit_temperature
from ugmm_vision.functional import (
    SCORES,
    adaptive_calibration_error,
    augrc,
    aurc,
    brier_score,
    classwise_calibration_error,
    expected_calibration_error,
    fpr_at_tpr,
    max_softmax_probability,
    negative_log_likelihood,
    ood_aupr,
    ood_auroc,
    reliability_diagram_data,
    risk_at_coverage,
)
from ugmm_vision.methods.conformal import conformal_report

__all__ = [
    "LOGIT_SCORES",
    "EvalOutputs",
    "build_report",
    "classification_metrics",
    "ood_metrics",
    "shift_metrics",
]

LOGIT_SCORES = ("msp", "neg_entropy", "energy", "max_logit")
"""Scores any head has; uGMM heads add ``density_max``, ``density_logsumexp`` and ``hidden_density``."""
DENSITY_SCORES = ("density_max", "density_logsumexp")


@dataclass
class EvalOutputs:
    """What a model produced on one evaluation set.

    Attributes:
        logits: class logits (N, C) (for uGMM heads: class log-densities).
        targets: labels (N,); for OOD sets whatever the data module gives (never scored as classes).
        hidden_density: summed log-density of the hidden uGMM neurons (N,), None for other heads or a single layer.
        extra: further per-sample OOD scores (N,) by name, higher = more in-distribution — what an uncertainty
            method (:mod:`ugmm_vision.methods`) adds: ``neg_mutual_information``, ``feature_density``, …
    """

    logits: Tensor
    targets: Tensor
    hidden_density: Tensor | None = None
    extra: dict[str, Tensor] = field(default_factory=dict)

    def cpu(self) -> EvalOutputs:
        """The same outputs with every tensor detached on the CPU."""
        return EvalOutputs(
            self.logits.detach().cpu(),
            self.targets.detach().cpu(),
            None if self.hidden_density is None else self.hidden_density.detach().cpu(),
            {name: score.detach().cpu() for name, score in self.extra.items()},
        )

    def scores(self, names: tuple[str, ...]) -> dict[str, Tensor]:
        """Per-sample scores by name, higher = more in-distribution."""
        out = {name: SCORES[name](self.logits) for name in names if name in SCORES}
        if "hidden_density" in names and self.hidden_density is not None:
            out["hidden_density"] = self.hidden_density
        out.update({name: self.extra[name] for name in names if name in self.extra})
        return out


def classification_metrics(logits: Tensor, targets: Tensor, n_bins: int = 15) -> dict[str, float]:
    """Accuracy, proper scores, calibration errors and selective-prediction areas of one labelled set."""
    logits = logits.double()
    probs = logits.softmax(dim=-1)  # (N, C)
    confidence = max_softmax_probability(logits)  # (N,)
    correct = probs.argmax(dim=-1) == targets  # (N,)
    metrics = {
        "acc": correct.double().mean(),
        "nll": negative_log_likelihood(logits, targets),
        "brier": brier_score(probs, targets),
        "ece": expected_calibration_error(probs, targets, n_bins, norm="l1"),
        "rmsce": expected_calibration_error(probs, targets, n_bins, norm="l2"),
        "mce": expected_calibration_error(probs, targets, n_bins, norm="max"),
        "aece": adaptive_calibration_error(probs, targets, n_bins),
        "cwce": classwise_calibration_error(probs, targets, n_bins),
        "aurc": aurc(confidence, correct),
        "augrc": augrc(confidence, correct),
        "risk@90cov": risk_at_coverage(confidence, correct, 0.9),
    }
    return {name: float(value) for name, value in metrics.items()}


def ood_metrics(id_outputs: EvalOutputs, ood_outputs: EvalOutputs, score_names: tuple[str, ...]) -> dict:
    """AUROC, AUPR-in/out and FPR at 95 % TPR of each score, in-distribution being the positive class."""
    id_scores, ood_scores = id_outputs.scores(score_names), ood_outputs.scores(score_names)
    return {
        name: {
            "auroc": float(ood_auroc(id_scores[name], ood_scores[name])),
            "aupr_in": float(ood_aupr(id_scores[name], ood_scores[name], positive="id")),
            "aupr_out": float(ood_aupr(id_scores[name], ood_scores[name], positive="ood")),
            "fpr95": float(fpr_at_tpr(id_scores[name], ood_scores[name], tpr=0.95)),
        }
        for name in id_scores
    }


def shift_metrics(outputs: dict[str, EvalOutputs], n_bins: int = 15) -> dict:
    """Accuracy, ECE and NLL per corruption and severity (keys ``shift/<corruption>/<severity>``) and means."""
    per: dict[str, dict[int, dict[str, float]]] = {}
    for key, out in outputs.items():
        _, corruption, severity = key.split("/")
        metrics = classification_metrics(out.logits, out.targets, n_bins)
        per.setdefault(corruption, {})[int(severity)] = {k: metrics[k] for k in ("acc", "ece", "nll")}
    if not per:
        return {}
    cells = [m for by_severity in per.values() for m in by_severity.values()]
    severities = sorted({s for by_severity in per.values() for s in by_severity})
    return {
        "per_corruption": {c: dict(sorted(v.items())) for c, v in sorted(per.items())},
        "mean_by_severity": {
            s: {k: statistics.fmean(per[c][s][k] for c in per if s in per[c]) for k in ("acc", "ece", "nll")}
            for s in severities
        },
        "mean": {k: statistics.fmean(m[k] for m in cells) for k in ("acc", "ece", "nll")},
    }


def build_report(
    outputs: dict[str, EvalOutputs],
    val_outputs: EvalOutputs | None = None,
    *,
    density_scores: bool = False,
    n_bins: int = 15,
    conformal_alphas: tuple[float, ...] = (0.1, 0.05),
) -> dict:
    """The whole evaluation report as a JSON-ready dict.

    Args:
        outputs: named sets: ``"id"`` (required), ``"ood"``/``"ood/<name>"``, ``"shift/<corruption>/<severity>"``.
        val_outputs: validation-set outputs; when given, a temperature is fitted on them (NLL, LBFGS) and the
            in-distribution metrics are reported again after scaling.
        density_scores: also score OOD with the head's log-densities (uGMM heads).
        n_bins: bins of the calibration errors.
        conformal_alphas: levels α of the conformal prediction sets (APS) calibrated on ``val_outputs``; the report
            gives their coverage and mean set size on the in-distribution test set (``report["conformal"]``).
            The method's own scores (``EvalOutputs.extra``) join the OOD scores.

    Example:
        >>> import torch
        >>> torch.manual_seed(0) and None
        >>> logits, targets = torch.randn(64, 3) * 3, torch.randint(0, 3, (64,))
        >>> ood = EvalOutputs(torch.randn(32, 3), targets[:32])
        >>> report = build_report({"id": EvalOutputs(logits, targets), "ood": ood})
        >>> sorted(report), sorted(report["ood"]["ood"])[:2]
        (['id', 'ood', 'ood_best', 'reliability', 'shift'], ['energy', 'max_logit'])
    """
    if "id" not in outputs:
        raise ValueError(f"Expected `outputs` to contain the in-distribution set 'id', got keys {sorted(outputs)}")
    unknown = [k for k in outputs if k != "id" and not k.startswith(("ood", "shift/"))]
    if unknown:
        raise ValueError(
            f"Expected `outputs` keys 'id', 'ood[/<name>]' or 'shift/<corruption>/<severity>', got {unknown}"
        )
    id_out = outputs["id"]
    report: dict = {"id": classification_metrics(id_out.logits, id_out.targets, n_bins)}
    diagram = reliability_diagram_data(id_out.logits.double().softmax(dim=-1), id_out.targets, n_bins)
    report["reliability"] = {field: getattr(diagram, field).tolist() for field in diagram._fields}
    if val_outputs is not None:
        temperature = fit_temperature(val_outputs.logits.double(), val_outputs.targets)
        scaled = classification_metrics(id_out.logits.double() / temperature, id_out.targets, n_bins)
        report["id_temperature_scaled"] = {"temperature": float(temperature), **scaled}

    score_names = LOGIT_SCORES
    if density_scores:
        score_names += DENSITY_SCORES + (("hidden_density",) if id_out.hidden_density is not None else ())
    score_names += tuple(id_out.extra)
    if val_outputs is not None and conformal_alphas:
        report["conformal"] = conformal_report(
            val_outputs.logits, val_outputs.targets, id_out.logits, id_out.targets, alphas=tuple(conformal_alphas)
        )
    report["ood"] = {
        name: ood_metrics(id_out, out, score_names) for name, out in outputs.items() if name.startswith("ood")
    }
    report["ood_best"] = {
        name: max(({"score": s, **m} for s, m in by_score.items()), key=lambda m: m["auroc"])
        for name, by_score in report["ood"].items()
    }
    report["shift"] = shift_metrics({k: v for k, v in outputs.items() if k.startswith("shift/")}, n_bins)
    return report
