"""Two-process DDP (gloo on CPU): every metric class gives, on every rank, the functional result on the union.

Each rank sees different data in a different number of batches of uneven sizes, so ``sum`` states must add up
and ``cat`` states must gather uneven tensors.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ugmm_vision.functional import (
    adaptive_calibration_error,
    augrc,
    aurc,
    brier_score,
    classwise_calibration_error,
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

WORLD_SIZE = 2
NUM_CLASSES = 3
RANK_SIZES = {0: (11, 5, 20), 1: (8, 3)}


def rank_batches(rank: int) -> list[dict[str, torch.Tensor]]:
    """Deterministic, different data per rank: logits, target, OOD-style scores and ID flags."""
    g = torch.Generator().manual_seed(100 + rank)
    batches = []
    for n in RANK_SIZES[rank]:
        target = torch.randint(0, NUM_CLASSES, (n,), generator=g)
        logits = torch.randn(n, NUM_CLASSES, generator=g) + 1.5 * torch.nn.functional.one_hot(target, NUM_CLASSES)
        is_id = torch.rand(n, generator=g) < 0.6
        is_id[0], is_id[-1] = True, False  # every rank holds both kinds
        scores = torch.round(4 * torch.randn(n, generator=g) + 3 * is_id + 20)  # energy-like, with ties
        batches.append({"logits": logits, "target": target, "scores": scores, "is_id": is_id})
    return batches


def selective(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    confidence, prediction = batch["logits"].softmax(-1).max(-1)
    return torch.round(confidence, decimals=2), prediction == batch["target"]


def make_metrics() -> dict:
    return {
        "nll": NegativeLogLikelihood(),
        "brier": BrierScore(),
        "ace": AdaptiveCalibrationError(n_bins=4),
        "cwce": ClasswiseCalibrationError(NUM_CLASSES, n_bins=4),
        "aurc": AURC(),
        "augrc": AUGRC(),
        "ood": OODDetection(),
    }


def update_all(metrics: dict, batch: dict[str, torch.Tensor]) -> None:
    probs = batch["logits"].softmax(-1)
    metrics["nll"].update(batch["logits"], batch["target"])
    for name in ("brier", "ace", "cwce"):
        metrics[name].update(probs, batch["target"])
    for name in ("aurc", "augrc"):
        metrics[name].update(*selective(batch))
    metrics["ood"].update(batch["scores"], batch["is_id"])


def expected_on_union() -> dict:
    batches = rank_batches(0) + rank_batches(1)
    logits, target = torch.cat([b["logits"] for b in batches]), torch.cat([b["target"] for b in batches])
    scores, is_id = torch.cat([b["scores"] for b in batches]), torch.cat([b["is_id"] for b in batches])
    probs = logits.softmax(-1)
    confidence, correct = (torch.cat(parts) for parts in zip(*(selective(b) for b in batches), strict=True))
    id_scores, ood_scores = scores[is_id], scores[~is_id]
    return {
        "nll": negative_log_likelihood(logits, target),
        "brier": brier_score(probs, target),
        "ace": adaptive_calibration_error(probs, target, n_bins=4),
        "cwce": classwise_calibration_error(probs, target, n_bins=4),
        "aurc": aurc(confidence, correct),
        "augrc": augrc(confidence, correct),
        "ood": {
            "auroc": ood_auroc(id_scores, ood_scores),
            "aupr_in": ood_aupr(id_scores, ood_scores),
            "aupr_out": ood_aupr(id_scores, ood_scores, positive="ood"),
            "fpr95": fpr_at_tpr(id_scores, ood_scores),
        },
    }


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE)
    try:
        metrics = make_metrics()
        for batch in rank_batches(rank):
            update_all(metrics, batch)
        results = {name: metric.compute() for name, metric in metrics.items()}
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_metrics_under_two_process_ddp(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    expected = expected_on_union()
    single = make_metrics()  # the same batches through one process
    for rank in range(WORLD_SIZE):
        for batch in rank_batches(rank):
            update_all(single, batch)
    for rank in range(WORLD_SIZE):
        results = torch.load(tmp_path / f"rank{rank}.pt")
        assert set(results) == set(expected)
        for name, value in expected.items():
            if name == "ood":
                assert list(results[name]) == list(value)
                for key in value:
                    torch.testing.assert_close(results[name][key], value[key])
                    torch.testing.assert_close(results[name][key], single[name].compute()[key])
            else:
                torch.testing.assert_close(results[name], value.float(), msg=f"{name} on rank {rank}")
                torch.testing.assert_close(results[name], single[name].compute(), msg=f"{name} on rank {rank}")
