"""Digits: uGMM head initialisations and head learning rates against a linear head, same backbone and budget.

Run: ``python benchmarks/head_init.py [--epochs 30] [--seeds '[0, 1, 2]']``. Prints a Markdown table (mean ± std over
seeds of test accuracy, NLL, ECE and OOD AUROC with digits 8 and 9 held out). Figures are recorded in
docs/benchmarks.md.
"""

from __future__ import annotations

import functools
import logging
import statistics
import time

import lightning as L
import torch
from jsonargparse import CLI

from ugmm_vision.backbones import SmallCNN
from ugmm_vision.data import DigitsDataModule
from ugmm_vision.heads import LinearHead, UGMMHead
from ugmm_vision.models import ImageClassifier
from ugmm_vision.trainers import quiet_trainer

VARIANTS = {
    "linear (lr 3e-3)": (LinearHead, None),
    "uGMM paper init, head lr 3e-3": (functools.partial(UGMMHead, init="paper"), None),
    "uGMM paper init, head lr 3e-2": (functools.partial(UGMMHead, init="paper"), 3e-2),
    "uGMM unit init, head lr 3e-3": (functools.partial(UGMMHead, init="unit"), None),
    "uGMM unit init, head lr 3e-2": (functools.partial(UGMMHead, init="unit"), 3e-2),
}
METRICS = ("test/acc", "test/nll", "test/cal/ece", "test/ood/auroc_msp")


def run(head, head_lr: float | None, seed: int, epochs: int) -> dict[str, float]:
    L.seed_everything(seed, verbose=False)
    data = DigitsDataModule(ood_classes=(8, 9), seed=seed)
    model = ImageClassifier(
        SmallCNN(in_chans=1),
        head,
        num_classes=8,
        optimizer=functools.partial(torch.optim.AdamW, lr=3e-3, weight_decay=1e-4),
        lr_scheduler=functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=epochs),
        head_lr=head_lr,
    )
    trainer = quiet_trainer(max_epochs=epochs, deterministic=True)
    trainer.fit(model, data)
    return trainer.test(model, data, verbose=False)[0]


def main(epochs: int = 30, seeds: tuple[int, ...] = (0, 1, 2)) -> None:
    """Train every variant for each seed and print the table.

    Args:
        epochs: training epochs per run.
        seeds: seeds of the data split and the initialisation.
    """
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    print(f"| head | {' | '.join(m.removeprefix('test/') for m in METRICS)} | time/run |")
    print("|---" * (len(METRICS) + 2) + "|")
    for name, (head, head_lr) in VARIANTS.items():
        start = time.perf_counter()
        results = [run(head, head_lr, seed, epochs) for seed in seeds]
        elapsed = (time.perf_counter() - start) / len(seeds)
        cells = []
        for metric in METRICS:
            values = [r[metric] for r in results]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.4f} ± {spread:.4f}")
        print(f"| {name} | {' | '.join(cells)} | {elapsed:.0f} s |", flush=True)


if __name__ == "__main__":
    CLI(main)
