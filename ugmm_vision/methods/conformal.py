"""Split-conformal prediction sets for any method: APS (Romano et al. 2020) and RAPS (Angelopoulos et al. 2021).

A label's score is the probability mass of the labels ranked at or above it, ``s(x, y) = Σ_{j: p_j ≥ p_y} p_j``
(APS), plus ``λ · max(0, rank(y) − k_reg)`` for RAPS (rank 1 = top class). Calibration takes the
``⌈(n+1)(1−α)⌉``-th smallest score of the true labels on n held-out samples (the validation split) as ``q̂``; the
set of a test image is every label whose score is ≤ ``q̂``. For exchangeable calibration and test data the true
label is in the set with probability ≥ 1 − α (marginally, over calibration draws). This is the non-randomised
variant: sets are deterministic and slightly conservative (no uniform tie-breaking draw), and a set can be empty
when the top class alone exceeds ``q̂``.

Written by hand (a sort, a cumulative sum and a quantile) rather than taken from a library: TorchCP pulls in
transformers, torch-geometric and torchsort (a compiled extension built against torch); TorchUncertainty's
``ConformalClsAPS``/``RAPS`` calibrate by calling a model over a DataLoader, while here the outputs are already
collected — and gathered across DDP ranks — by the report (:mod:`ugmm_vision.report.evaluate`), and it would add
its own package import plus pandas and seaborn; crepes works on NumPy arrays of generic non-conformity scores and
has no APS/RAPS score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["aps_scores", "conformal_metrics", "conformal_quantile", "conformal_report", "prediction_sets"]


def _check_probs(probs: Tensor) -> None:
    if not isinstance(probs, Tensor) or probs.ndim != 2 or probs.shape[1] < 2:
        shape = tuple(probs.shape) if isinstance(probs, Tensor) else type(probs).__name__
        raise ValueError(f"Expected `probs` of shape (N, C) with C ≥ 2, got {shape}")


def aps_scores(probs: Tensor, *, penalty: float = 0.0, k_reg: int = 0) -> Tensor:
    """The APS/RAPS score of every label: mass of the labels ranked at or above it, plus the RAPS penalty.

    Args:
        probs: predictive probabilities (N, C).
        penalty: RAPS's λ ≥ 0 (0: APS).
        k_reg: RAPS's number of top ranks without penalty.

    Returns:
        Scores (N, C), in the labels' order.

    Example:
        >>> aps_scores(torch.tensor([[0.15, 0.5, 0.05, 0.3]]))
        tensor([[0.9500, 0.5000, 1.0000, 0.8000]])
        >>> aps_scores(torch.tensor([[0.15, 0.5, 0.05, 0.3]]), penalty=0.1, k_reg=1)  # + 0.1·max(0, rank − 1)
        tensor([[1.1500, 0.5000, 1.3000, 0.9000]])
    """
    _check_probs(probs)
    if penalty < 0:
        raise ValueError(f"Expected `penalty` ≥ 0, got {penalty}")
    if k_reg < 0:
        raise ValueError(f"Expected `k_reg` ≥ 0, got {k_reg}")
    ordered, order = probs.sort(dim=-1, descending=True)  # (N, C)
    ranks = torch.arange(1, probs.shape[1] + 1, device=probs.device, dtype=probs.dtype)  # (C,)
    sorted_scores = ordered.cumsum(dim=-1) + penalty * (ranks - k_reg).clamp_min(0)  # (N, C) in rank order
    return torch.empty_like(sorted_scores).scatter_(-1, order, sorted_scores)  # back to label order


def conformal_quantile(scores: Tensor, alpha: float) -> float:
    """Split-conformal threshold: the ``⌈(n+1)(1−α)⌉``-th smallest calibration score (``inf`` if that exceeds n).

    Example:
        >>> conformal_quantile(torch.arange(1.0, 10.0), 0.2)  # n = 9: the ⌈8⌉-th smallest
        8.0
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"Expected `alpha` in (0, 1), got {alpha}")
    n = scores.numel()
    if n == 0:
        raise ValueError("Expected at least one calibration score, got none")
    k = math.ceil((n + 1) * (1 - alpha) - 1e-9)  # guard against (n+1)(1−α) landing a hair above an integer
    if k > n:
        return math.inf
    return float(scores.flatten().sort().values[k - 1])


def prediction_sets(probs: Tensor, qhat: float, *, penalty: float = 0.0, k_reg: int = 0) -> Tensor:
    """Boolean prediction sets (N, C): labels whose APS/RAPS score is ≤ ``qhat``.

    Example:
        >>> prediction_sets(torch.tensor([[0.5, 0.3, 0.15, 0.05]]), 0.85)  # masses 0.5, 0.8, 0.95, 1.0
        tensor([[ True,  True, False, False]])
    """
    scores = aps_scores(probs, penalty=penalty, k_reg=k_reg)  # (N, C)
    slack = 8 * torch.finfo(scores.dtype).eps * max(1.0, abs(qhat)) if math.isfinite(qhat) else 0.0
    return scores <= qhat + slack  # a few ulps: cumulative sums in another order (0.1 + 0.2 vs 0.3) still count


def conformal_metrics(
    cal_probs: Tensor,
    cal_labels: Tensor,
    test_probs: Tensor,
    test_labels: Tensor,
    alpha: float,
    *,
    penalty: float = 0.0,
    k_reg: int = 0,
) -> dict[str, float]:
    """Calibrate on ``cal_*`` at level ``alpha`` and measure on ``test_*``: coverage, mean set size and ``q̂``.

    Example:
        >>> probs = torch.tensor([[0.7, 0.2, 0.1]] * 4)
        >>> m = conformal_metrics(probs, torch.tensor([0, 0, 0, 1]), probs, torch.tensor([0, 1, 2, 0]), 0.2)
        >>> round(m["qhat"], 4), m["coverage"], m["mean_set_size"]  # q̂: 4th smallest of (.7, .7, .7, .9)
        (0.9, 0.75, 2.0)
    """
    cal_scores = aps_scores(cal_probs.double(), penalty=penalty, k_reg=k_reg)  # (N, C)
    true_scores = cal_scores.gather(1, cal_labels.long().view(-1, 1)).squeeze(1)  # (N,)
    qhat = conformal_quantile(true_scores, alpha)
    sets = prediction_sets(test_probs.double(), qhat, penalty=penalty, k_reg=k_reg)  # (M, C)
    covered = sets.gather(1, test_labels.long().view(-1, 1)).squeeze(1)  # (M,)
    return {
        "qhat": qhat,
        "coverage": float(covered.double().mean()),
        "mean_set_size": float(sets.sum(dim=1).double().mean()),
    }


def conformal_report(
    cal_logits: Tensor,
    cal_labels: Tensor,
    test_logits: Tensor,
    test_labels: Tensor,
    alphas: Sequence[float] = (0.1, 0.05),
    *,
    penalty: float = 0.0,
    k_reg: int = 0,
) -> dict:
    """The report's conformal section: per α, coverage, mean set size and ``q̂`` (softmax of the logits).

    Example:
        >>> torch.manual_seed(0) and None
        >>> logits, labels = torch.randn(200, 3), torch.randint(0, 3, (200,))
        >>> r = conformal_report(logits[:100], labels[:100], logits[100:], labels[100:])
        >>> sorted(r), sorted(r["alpha=0.1"])
        (['alpha=0.05', 'alpha=0.1', 'score'], ['coverage', 'mean_set_size', 'qhat'])
    """
    cal_probs, test_probs = cal_logits.double().softmax(-1), test_logits.double().softmax(-1)
    report: dict = {"score": "aps" if penalty == 0 else f"raps(lambda={penalty}, k_reg={k_reg})"}
    for alpha in alphas:
        metrics = conformal_metrics(cal_probs, cal_labels, test_probs, test_labels, alpha, penalty=penalty, k_reg=k_reg)
        report[f"alpha={alpha:g}"] = metrics
    return report
