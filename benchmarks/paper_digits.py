"""The paper's discriminative MNIST setup, run offline on scikit-learn's 8×8 digits: uGMM 64-128-64-10 vs ReLU MLP.

Run: ``python benchmarks/paper_digits.py [--epochs 100] [--seeds '[0, 1, 2]']``. Prints a Markdown table (mean ± std
over seeds of test accuracy, NLL and ECE; parameters; training time per epoch). Figures are recorded in
docs/paper_reproduction.md; the MNIST configs themselves are configs/paper_mnist_{ugmm,mlp}.yaml.

Both models are ``ImageClassifier(FlattenBackbone(1, 8), head)`` on the same data, optimiser, schedule and batch
size, so only the neurons differ: the uGMM head is the paper's (``hidden=(128, 64)``, no input normalisation,
mixing dropout 0.2 on the first layer, paper init), the MLP the same shape with ReLU (a third of the parameters: a
uGMM neuron has 3 per input), and a second MLP with two hidden layers of 191 sized to the uGMM head's count. One
more uGMM row is not the paper's: the project's default head (LayerNorm on the inputs, ``init="unit"``), to separate
the neurons from the initialisation.
Settings from the paper's MNIST run: Adam lr 0.01, batch 256, MultiStepLR ×0.1 at epochs 20/45/60, 100 epochs.
Digits keep all ten classes (no OOD split); pixels are standardised by :class:`~ugmm_vision.data.DigitsDataModule`
(MNIST in the paper: [0, 1]).
"""

from __future__ import annotations

import functools
import logging
import statistics
import time
import warnings

import lightning as L
import torch
from jsonargparse import CLI

from ugmm_vision.backbones import FlattenBackbone
from ugmm_vision.data import DigitsDataModule
from ugmm_vision.heads import MLPHead, UGMMHead, count_parameters
from ugmm_vision.models import ImageClassifier
from ugmm_vision.trainers import quiet_trainer

HEADS = {
    "uGMM 64-128-64-10 (paper: dropout 0.2, paper init)": functools.partial(
        UGMMHead, hidden=(128, 64), norm_layer=None, mixing_dropout=(0.2, 0.0, 0.0), init="paper"
    ),
    "uGMM 64-128-64-10, LayerNorm + unit init (not the paper's)": functools.partial(
        UGMMHead, hidden=(128, 64), mixing_dropout=(0.2, 0.0, 0.0), init="unit"
    ),
    "ReLU MLP 64-128-64-10 (same shape)": functools.partial(MLPHead, hidden=(128, 64), norm_layer=None),
    "ReLU MLP 64-191-191-10 (parameter-matched)": functools.partial(MLPHead, hidden=(191, 191), norm_layer=None),
}
METRICS = ("test/acc", "test/nll", "test/cal/ece")


def run(
    head, seed: int, epochs: int, lr: float, batch_size: int, milestones: tuple[int, ...]
) -> tuple[dict, int, float]:
    L.seed_everything(seed, verbose=False)
    data = DigitsDataModule(batch_size=batch_size, seed=seed)
    model = ImageClassifier(
        FlattenBackbone(in_chans=1, image_size=8),
        head,
        num_classes=10,
        optimizer=functools.partial(torch.optim.Adam, lr=lr),
        lr_scheduler=functools.partial(torch.optim.lr_scheduler.MultiStepLR, milestones=list(milestones), gamma=0.1),
    )
    trainer = quiet_trainer(max_epochs=epochs, deterministic=True)
    start = time.perf_counter()
    trainer.fit(model, data)
    per_epoch = (time.perf_counter() - start) / epochs
    return trainer.test(model, data, verbose=False)[0], count_parameters(model.head), per_epoch


def main(
    epochs: int = 100,
    seeds: tuple[int, ...] = (0, 1, 2),
    lr: float = 0.01,
    batch_size: int = 256,
    milestones: tuple[int, ...] = (20, 45, 60),
    threads: int = 1,
) -> None:
    """Train both heads for each seed and print the table.

    Args:
        epochs: training epochs per run.
        seeds: seeds of the data split and the initialisation.
        lr: Adam learning rate (the paper's 0.01).
        batch_size: samples per batch (the paper's 256).
        milestones: epochs at which the learning rate is multiplied by 0.1.
        threads: torch CPU threads (the measurements in docs/ use 1 on a shared 2-core machine).
    """
    torch.set_num_threads(threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*treespec.*")  # a deprecation inside Lightning, not ours
    print(f"Digits 8×8 flattened to 64 inputs, 10 classes; {epochs} epochs; seeds {list(seeds)}\n")
    print("| model | parameters | test accuracy % | test NLL | test ECE | time / epoch |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, head in HEADS.items():
        results = [run(head, seed, epochs, lr, batch_size, milestones) for seed in seeds]
        cells = []
        for metric in METRICS:
            scale = 100.0 if metric == "test/acc" else 1.0
            values = [scale * r[0][metric] for r in results]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            digits = 2 if metric == "test/acc" else 4
            cells.append(f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}")
        per_epoch = statistics.mean(r[2] for r in results)
        print(f"| {name} | {results[0][1]} | {' | '.join(cells)} | {1000 * per_epoch:.0f} ms |", flush=True)


if __name__ == "__main__":
    CLI(main)
