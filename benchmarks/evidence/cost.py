"""Cost of each head and uncertainty method of the evidence study, measured in one run (docs/results.md).

The ``compare`` tables record times too, but of runs that shared the machine with other jobs. This benchmark is
meant for a quiet machine: it prints the load average before and after, and every figure comes from this one
process on the device the models train on. Set-up as ``configs/evidence_fmnist.yaml``: SmallCNN (16, 32, 64) on
Fashion-MNIST (9 classes), batch 128, AdamW; the models are not trained to convergence — cost does not depend on it.

* training seconds / epoch: ``Trainer.fit`` over ``--steps`` batches of the real training loader (data loading
  included), scaled to a whole epoch; a method's training is that of its members (an ensemble of 5 = 5 models; MC
  dropout trains one model with feature dropout);
* post-hoc fit seconds: DDU's Gaussians and Laplace's curvature, fitted on the whole training loader;
* inference µs / image: the model's (or method's) forward on a batch of 128 test images, median of ``--repeats``.

    python benchmarks/evidence/cost.py                 # needs Fashion-MNIST (make data)
"""

from __future__ import annotations

import os
import statistics
import time

import lightning as L
import torch
from jsonargparse import CLI
from lightning import Trainer

from ugmm_vision.backbones import SmallCNN
from ugmm_vision.data import FashionMNISTDataModule
from ugmm_vision.heads import LinearHead, ParamMatchedMLPHead, UGMMHead
from ugmm_vision.methods import DeepEnsemble, FeatureDensity, LastLayerLaplace, MCDropout
from ugmm_vision.models import ImageClassifier

HEADS = {
    "linear": lambda f, c: LinearHead(f, c),
    "mlp_param_matched": lambda f, c: ParamMatchedMLPHead(f, c, match_hidden=[64]),
    "ugmm_single_layer": lambda f, c: UGMMHead(f, c),
    "ugmm_hidden": lambda f, c: UGMMHead(f, c, hidden=[64]),
}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def build(head_factory, seed: int = 0) -> ImageClassifier:
    L.seed_everything(seed, verbose=False)
    backbone = SmallCNN(in_chans=1, widths=(16, 32, 64))
    return ImageClassifier(backbone, head_factory(backbone.num_features, 9), num_classes=9, head_lr=0.03)


def train_seconds_per_epoch(model: ImageClassifier, data, steps: int) -> float:
    trainer = Trainer(
        max_epochs=1,
        limit_train_batches=steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="auto",
        devices=1,
    )
    start = time.perf_counter()
    trainer.fit(model, data)
    return (time.perf_counter() - start) / steps * len(data.train_dataloader())


@torch.no_grad()
def microseconds_per_image(module, images: torch.Tensor, repeats: int) -> float:
    module.eval()
    for _ in range(2):
        module(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        module(images)
        times.append(time.perf_counter() - start)
    return 1e6 * statistics.median(times) / len(images)


def main(steps: int = 60, repeats: int = 10, threads: int = 2) -> None:
    """Print the cost table.

    Args:
        steps: training batches timed per model (scaled to an epoch).
        repeats: timed inference calls per row.
        threads: torch threads (the machine's cores).
    """
    torch.set_num_threads(threads)
    print(f"load average before: {load()}  (torch {torch.__version__}, {threads} threads, device: cpu)")
    data = FashionMNISTDataModule(ood_classes=[9], batch_size=128, ood_dataset=None)
    data.prepare_data()
    data.setup("fit")
    data.setup("test")
    images = next(iter(data.test_dataloader()["id"]))[0][:128]
    rows = []
    trained = {}
    for name, factory in HEADS.items():
        model = build(factory)
        seconds = train_seconds_per_epoch(model, data, steps)
        trained[name] = (model, seconds)
        params = sum(p.numel() for p in model.head.parameters())
        rows.append((name, params, seconds, None, microseconds_per_image(model, images, repeats)))
    linear, linear_seconds = trained["linear"]
    params = rows[0][1]
    rows.append(("linear + temperature scaling", params + 1, linear_seconds, None, rows[0][4]))
    mc = MCDropout(n_samples=20, feature_dropout=0.1)
    mc_model = build(lambda f, c: mc.prepare_head(LinearHead(f, c)))
    mc_seconds = train_seconds_per_epoch(mc_model, data, steps)
    mc.attach([mc_model])
    rows.append(
        ("linear + MC dropout (20 samples)", params, mc_seconds, None, microseconds_per_image(mc, images, repeats))
    )
    ensemble = DeepEnsemble(members=5)
    members = [linear] + [build(HEADS["linear"], seed=m) for m in range(1, 5)]
    ensemble_seconds = linear_seconds + sum(train_seconds_per_epoch(m, data, steps) for m in members[1:])
    ensemble.attach(members)
    rows.append(
        (
            "linear + deep ensemble (5)",
            5 * params,
            ensemble_seconds,
            None,
            microseconds_per_image(ensemble, images, repeats),
        )
    )
    for label, method in (
        ("linear + DDU feature density", FeatureDensity()),
        ("linear + last-layer Laplace", LastLayerLaplace()),
    ):
        method.attach([linear])
        start = time.perf_counter()
        method.fit(data.train_dataloader())
        fit_seconds = time.perf_counter() - start
        rows.append((label, params, linear_seconds, fit_seconds, microseconds_per_image(method, images, repeats)))
    print(f"load average after: {load()}")
    print()
    print("| head / method | head parameters | train s / epoch | post-hoc fit s | inference µs / image |")
    print("|---|---:|---:|---:|---:|")
    for name, params, seconds, fit_seconds, latency in rows:
        fit = "—" if fit_seconds is None else f"{fit_seconds:.1f}"
        print(f"| {name} | {params:,} | {seconds:.1f} | {fit} | {latency:.1f} |")


if __name__ == "__main__":
    CLI(main)
