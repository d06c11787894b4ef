"""Metric classes: accumulated batches equal the functional on the whole set; forward, reset, validation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassCalibrationError

from ugmm_vision.functional import (
    adaptive_calibration_error,
    augrc,
    aurc,
    brier_score,
    classwise_calibration_error,
    expected_calibration_error,
    fpr_at_tpr,
    negative_log_likelihood,
    ood_aupr,
    ood_auroc,
)
from ugmm_vision.metrics import (
    AUGRC,
    AURC,
    AdaptiveCalibrationError,
    BrierScore,
    ClasswiseCalibrationError,
    NegativeLogLikelihood,
    OODDetection,
)

NUM_CLASSES = 4
SIZES = (7, 30, 1, 12)


def make_batches(seed: int = 0, sizes: tuple[int, ...] = SIZES) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in sizes:
        target = torch.randint(0, NUM_CLASSES, (n,), generator=g)
        logits = 2 * torch.randn(n, NUM_CLASSES, generator=g) + 2 * torch.nn.functional.one_hot(target, NUM_CLASSES)
        logits[0] = torch.round(logits[0])  # a few ties in the confidences across batches
        out.append((logits, target))
    return out


def as_logits(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return logits, target


def as_probs(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return logits.softmax(-1), target


def as_selective(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    confidence, prediction = logits.softmax(-1).max(-1)
    return torch.round(confidence, decimals=2), prediction == target  # rounding forces ties


# name: (metric factory, batch -> update inputs, functional on the union)
CASES: dict[str, tuple[Callable[[], Metric], Callable, Callable]] = {
    "nll": (NegativeLogLikelihood, as_logits, negative_log_likelihood),
    "brier": (BrierScore, as_probs, brier_score),
    "ace": (
        lambda: AdaptiveCalibrationError(n_bins=5),
        as_probs,
        lambda p, t: adaptive_calibration_error(p, t, 5),
    ),
    "cwce": (
        lambda: ClasswiseCalibrationError(NUM_CLASSES, n_bins=5),
        as_probs,
        lambda p, t: classwise_calibration_error(p, t, 5),
    ),
    "aurc": (AURC, as_selective, aurc),
    "augrc": (AUGRC, as_selective, augrc),
}


def union(batches: list, prep: Callable) -> tuple[torch.Tensor, ...]:
    prepared = [prep(*batch) for batch in batches]
    return tuple(torch.cat(parts) for parts in zip(*prepared, strict=True))


@pytest.mark.parametrize("name", sorted(CASES))
def test_accumulated_equals_functional_on_union(name: str) -> None:
    factory, prep, functional = CASES[name]
    batches = make_batches()
    metric = factory()
    for batch in batches:
        metric.update(*prep(*batch))
    torch.testing.assert_close(metric.compute(), functional(*union(batches, prep)).float())


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_returns_batch_value_and_accumulates(name: str) -> None:
    factory, prep, functional = CASES[name]
    batches = make_batches(seed=1, sizes=(16, 9))
    metric = factory()
    for batch in batches:
        torch.testing.assert_close(metric(*prep(*batch)), functional(*prep(*batch)).float())
    torch.testing.assert_close(metric.compute(), functional(*union(batches, prep)).float())
    metric.reset()
    metric.update(*prep(*batches[1]))
    torch.testing.assert_close(metric.compute(), functional(*prep(*batches[1])).float())


@pytest.mark.parametrize("name", sorted(CASES))
def test_class_attributes(name: str) -> None:
    metric = CASES[name][0]()
    assert metric.full_state_update is False
    assert metric.higher_is_better is False
    assert metric.is_differentiable is (name in {"nll", "brier"})


def test_nll_is_differentiable() -> None:
    logits, target = make_batches(sizes=(8,))[0]
    logits.requires_grad_(True)
    NegativeLogLikelihood()(logits, target).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_torchmetrics_ece_class_equals_our_functional(norm: str) -> None:
    batches = make_batches(seed=2)
    metric = MulticlassCalibrationError(num_classes=NUM_CLASSES, n_bins=10, norm=norm)
    for batch in batches:
        metric.update(*as_probs(*batch))
    expected = expected_calibration_error(*union(batches, as_probs), n_bins=10, norm=norm)
    torch.testing.assert_close(metric.compute().float(), expected)


def make_ood(seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    id_batches = [torch.round(30 + 4 * torch.randn(n, generator=g)) for n in (20, 13)]  # energy-like, tied
    ood_batches = [torch.round(26 + 4 * torch.randn(n, generator=g)) for n in (9, 17, 4)]
    return id_batches, ood_batches


def expected_ood(id_scores: torch.Tensor, ood_scores: torch.Tensor, tpr: float = 0.95) -> dict[str, torch.Tensor]:
    return {
        "auroc": ood_auroc(id_scores, ood_scores),
        "aupr_in": ood_aupr(id_scores, ood_scores),
        "aupr_out": ood_aupr(id_scores, ood_scores, positive="ood"),
        f"fpr{round(100 * tpr)}": fpr_at_tpr(id_scores, ood_scores, tpr=tpr),
    }


@pytest.mark.parametrize("tpr", [0.95, 0.8])
def test_ood_detection_accumulates(tpr: float) -> None:
    id_batches, ood_batches = make_ood()
    metric = OODDetection(tpr=tpr)
    metric.update(ood_batches[0], False)  # a whole batch from the OOD loader
    metric.update(id_batches[0], torch.ones(20, dtype=torch.bool))
    mixed = torch.cat([ood_batches[1], id_batches[1]])
    metric.update(mixed, torch.arange(30) >= 17)
    metric.update(ood_batches[2], torch.zeros(4, dtype=torch.bool))
    result = metric.compute()
    expected = expected_ood(torch.cat(id_batches), torch.cat(ood_batches), tpr)
    assert list(result) == list(expected)
    for key in expected:
        torch.testing.assert_close(result[key], expected[key])


def test_ood_detection_needs_both_kinds() -> None:
    metric = OODDetection()
    metric.update(torch.rand(5), True)
    with pytest.raises(ValueError, match="both ID and OOD samples"):
        metric.compute()


def test_in_a_metric_collection_with_prefix() -> None:
    collection = MetricCollection({"nll": NegativeLogLikelihood(), "aurc": AURC()}, prefix="val/")
    test_collection = collection.clone(prefix="test/")
    logits, target = make_batches(sizes=(10,))[0]
    collection["nll"].update(logits, target)
    collection["aurc"].update(*as_selective(logits, target))
    result = collection.compute()
    assert set(result) == {"val/nll", "val/aurc"}
    torch.testing.assert_close(result["val/nll"], negative_log_likelihood(logits, target))
    assert test_collection["nll"].count.item() == 0


def test_update_validation() -> None:
    with pytest.raises(ValueError, match="`probs`"):
        BrierScore().update(torch.randn(3, 4), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`probs` of shape \(N, 4\)"):
        ClasswiseCalibrationError(4).update(torch.full((3, 3), 1 / 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="`target`"):
        NegativeLogLikelihood().update(torch.randn(3, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="`correct`"):
        AURC().update(torch.rand(3), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="`is_id` of shape"):
        OODDetection().update(torch.rand(3), torch.ones(3))
    with pytest.raises(ValueError, match="`n_bins`"):
        AdaptiveCalibrationError(n_bins=0)
    with pytest.raises(ValueError, match="`num_classes`"):
        ClasswiseCalibrationError(0)
    with pytest.raises(ValueError, match="`tpr`"):
        OODDetection(tpr=0.0)


def test_validate_args_false_skips_checks() -> None:
    metric = BrierScore(validate_args=False)
    metric.update(torch.full((2, 2), 0.5), torch.tensor([0, 1]))
    torch.testing.assert_close(metric.compute(), torch.tensor(0.5))
