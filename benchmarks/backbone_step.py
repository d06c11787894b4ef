"""Which backbone to pretrain on 1×28×28 images: one training step of each candidate, in CPU time.

Run: ``python benchmarks/backbone_step.py [--repeats 8] [--batch 128]``. Prints a Markdown table; results are
recorded in docs/data.md ("A pretrained backbone made here").

Candidates: timm ``resnet10t`` and ``resnet18`` (``in_chans=1``) and the built-in ``SmallCNN`` at two widths,
each with a linear layer to 5 classes. Step: ``cross_entropy(model(x), y).backward(); adamw.step()`` on random
images, the model in train mode. One thread; each step is timed by the thread's CPU time (``time.thread_time``), so
other jobs preempting the process on a shared machine do not inflate it (wall time is printed too). The models are
timed round-robin, one step of each per round, after one warm-up round; the table gives the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import timm
import torch
from torch import nn

from ugmm_vision.backbones import SmallCNN


def candidates() -> dict[str, nn.Module]:
    """The models compared, each ending in a 5-class linear layer."""
    return {
        "resnet10t": timm.create_model("resnet10t", num_classes=5, in_chans=1),
        "resnet18": timm.create_model("resnet18", num_classes=5, in_chans=1),
        "SmallCNN (32, 64, 128)": nn.Sequential(SmallCNN(in_chans=1), nn.Linear(128, 5)),
        "SmallCNN (16, 32, 64)": nn.Sequential(SmallCNN(in_chans=1, widths=(16, 32, 64)), nn.Linear(64, 5)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    images, labels = torch.randn(args.batch, 1, 28, 28), torch.randint(0, 5, (args.batch,))
    models = candidates()
    optimisers = {name: torch.optim.AdamW(model.parameters(), lr=1e-3) for name, model in models.items()}
    cpu: dict[str, list[float]] = {name: [] for name in models}
    wall: dict[str, list[float]] = {name: [] for name in models}
    load_before = os.getloadavg()[0]
    for round_ in range(args.repeats + 1):
        for name, model in models.items():
            t_cpu, t_wall = time.thread_time(), time.perf_counter()
            loss = nn.functional.cross_entropy(model(images), labels)
            optimisers[name].zero_grad()
            loss.backward()
            optimisers[name].step()
            if round_:  # round 0 warms up
                cpu[name].append(time.thread_time() - t_cpu)
                wall[name].append(time.perf_counter() - t_wall)
    print(f"batch {args.batch}, 1 thread, {args.repeats} steps each; load average {load_before:.1f} → "
          f"{os.getloadavg()[0]:.1f}\n")  # fmt: skip
    print("| model | parameters | CPU s/step (median) | wall s/step (median) |")
    print("|---|---:|---:|---:|")
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"| {name} | {params:.2f} M | {statistics.median(cpu[name]):.3f} | {statistics.median(wall[name]):.3f} |")


if __name__ == "__main__":
    main()
