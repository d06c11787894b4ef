"""Cost of each head and uncertainty method of the evidence study, measured in one run (docs/results.md).

The ``compare`` tables record times too, but of runs that shared the machine with other jobs. This benchmark is
meant for a quiet machine: it prints the load average before and after, and every figure comes from this one
process on the device the models train on. The set-up is read from the study's configs (``--configs``, merged in
order as the CLI merges them: by default ``configs/fashion_mnist.yaml`` then ``configs/evidence_fmnist.yaml``): the
data module, backbone, optimiser, schedule and learning rates, every head of ``heads`` and every method of
``methods`` on the first of ``method_heads``. The models are not trained to convergence — cost does not depend on
it.

* training seconds / epoch: ``Trainer.fit`` over ``--steps`` batches of the real training loader (data loading
  included), scaled to a whole epoch; a method's training is that of its members (an ensemble of 5 = 5 models; MC
  dropout trains one model with feature dropout);
* post-hoc fit seconds: DDU's Gaussians and Laplace's curvature, fitted on the whole training loader;
* inference µs / image: the model's (or method's) forward on a batch of 128 test images, median of ``--repeats``.

    python benchmarks/evidence/cost.py                 # needs Fashion-MNIST (make data)

The YAML is read with PyYAML and instantiated with Lightning's ``instantiate_class`` rather than through the CLI
parser: the compare-only keys (``heads``, ``methods``, ...) are not arguments of a ``LightningCLI`` run.
"""

from __future__ import annotations

import os
import time

import lightning as L
import torch
import yaml
from jsonargparse import CLI
from lightning import Trainer
from lightning.pytorch.cli import instantiate_class

from ugmm_vision.compare.training import latency_per_image
from ugmm_vision.methods import UncertaintyMethod
from ugmm_vision.models import ImageClassifier

STUDY_CONFIGS = ["configs/fashion_mnist.yaml", "configs/evidence_fmnist.yaml"]


def merged_config(paths: list[str]) -> dict:
    """The YAML files merged in order, later keys replacing earlier ones (mappings merged key by key)."""

    def merge(base: dict, override: dict) -> dict:
        out = dict(base)
        for key, value in override.items():
            both_dicts = isinstance(value, dict) and isinstance(out.get(key), dict)
            out[key] = merge(out[key], value) if both_dicts else value
        return out

    config: dict = {}
    for path in paths:
        with open(path, encoding="utf-8") as file:
            config = merge(config, yaml.safe_load(file) or {})
    return config


def instantiate(spec: dict, *args):
    """``instantiate_class`` with an optional ``init_args`` (the configs omit it where all are defaults)."""
    return instantiate_class(args, {"init_args": {}, **spec})


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def builder(model_spec: dict, num_classes: int):
    """``build(head_factory, seed)``: the configured classifier with the given head."""
    init = model_spec.get("init_args", {})
    options = {k: v for k, v in init.items() if k not in ("backbone", "head", "optimizer", "lr_scheduler")}
    optimizer = init.get("optimizer")
    scheduler = init.get("lr_scheduler")

    def build(head_factory, seed: int = 0) -> ImageClassifier:
        L.seed_everything(seed, verbose=False)
        backbone = instantiate(init["backbone"])
        return ImageClassifier(
            backbone,
            head_factory(backbone.num_features, num_classes),
            num_classes=num_classes,
            optimizer=(lambda params: instantiate(optimizer, params)) if optimizer else torch.optim.AdamW,
            lr_scheduler=(lambda opt: instantiate(scheduler, opt)) if scheduler else None,
            **options,
        )

    return build


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
    """The comparison's own latency measure (median of ``repeats`` after two warm-ups), on the CPU, in µs."""
    return 1e6 * latency_per_image(module, images, torch.device("cpu"), repeats)


def main(configs: list[str] = STUDY_CONFIGS, steps: int = 60, repeats: int = 10, threads: int = 2) -> None:
    """Print the cost table.

    Args:
        configs: the study's YAML configs, merged in order.
        steps: training batches timed per model (scaled to an epoch).
        repeats: timed inference calls per row.
        threads: torch threads (the machine's cores).
    """
    torch.set_num_threads(threads)
    config = merged_config(configs)
    print(f"load average before: {load()}  (torch {torch.__version__}, {threads} threads, device: cpu)")
    print(f"set-up: {' + '.join(configs)}")
    data = instantiate(config["data"])
    data.prepare_data()
    data.setup("fit")
    data.setup("test")
    num_classes = data.num_classes
    build = builder(config["model"], num_classes)
    heads = {name: (lambda f, c, spec=spec: instantiate(spec, f, c)) for name, spec in config["heads"].items()}
    methods: dict[str, UncertaintyMethod] = {
        name: instantiate(spec) for name, spec in config.get("methods", {}).items()
    }
    base_name = (config.get("method_heads") or list(heads))[0]
    images = next(iter(data.test_dataloader()["id"]))[0][:128]
    rows = []
    trained = {}
    for name, factory in heads.items():
        model = build(factory)
        seconds = train_seconds_per_epoch(model, data, steps)
        params = sum(p.numel() for p in model.head.parameters())
        latency = microseconds_per_image(model, images, repeats)
        trained[name] = (model, seconds, params, latency)
        rows.append((name, params, seconds, None, latency))
    base, base_seconds, params, base_latency = trained[base_name]
    rows.append((f"{base_name} + temperature scaling", params + 1, base_seconds, None, base_latency))
    for name, method in methods.items():
        probe = heads[base_name](1, num_classes)
        changes_training = method.prepare_head(probe) is not probe
        members, seconds = [], 0.0
        for m in range(method.num_members):  # member 0 is the head's own run where the method trains as it does
            if m == 0 and not changes_training:
                members.append(base)
                seconds += base_seconds
                continue
            member = build(lambda f, c, method=method: method.prepare_head(heads[base_name](f, c)), seed=m)
            seconds += train_seconds_per_epoch(member, data, steps)
            members.append(member)
        method.attach(members)
        fit_seconds = None
        if type(method).fit is not UncertaintyMethod.fit:  # a post-hoc fit (DDU's Gaussians, Laplace's curvature)
            start = time.perf_counter()
            method.fit(data.train_dataloader())
            fit_seconds = time.perf_counter() - start
        latency = microseconds_per_image(method, images, repeats)
        rows.append((f"{base_name} + {name}", params * method.num_members, seconds, fit_seconds, latency))
    print(f"load average after: {load()}")
    print()
    print("| head / method | head parameters | train s / epoch | post-hoc fit s | inference µs / image |")
    print("|---|---:|---:|---:|---:|")
    for name, params, seconds, fit_seconds, latency in rows:
        fit = "—" if fit_seconds is None else f"{fit_seconds:.1f}"
        print(f"| {name} | {params:,} | {seconds:.1f} | {fit} | {latency:.1f} |")


if __name__ == "__main__":
    CLI(main)
