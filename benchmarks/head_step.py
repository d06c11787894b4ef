"""What a uGMM head costs inside a training step: a timm ResNet-18 with a linear, a single-layer uGMM and a
hidden-layer uGMM head, eager and ``torch.compile``d.

Run: ``python benchmarks/head_step.py [--threads 2] [--repeats 5] [--setups a b] [--device cpu|cuda]``. Prints a
Markdown table per set-up; results are recorded in docs/benchmarks.md.

Set-ups (issue 14): (a) 1×28×28 images, batch 128, 10 classes; (b) 3×64×64 images, batch 64, 1000 classes;
on CUDA also (c) ResNet-50, 3×224×224, batch 256, 1000 classes (bf16 autocast, channels-last).
Heads on the backbone's pooled features (F = 512 for ResNet-18, 2048 for ResNet-50), all with LayerNorm first:
``LinearHead``; ``UGMMHead`` (one uGMM layer F → C); ``UGMMHead(hidden=(64,))`` (F → 64 → C).

* **Step**: ``loss = cross_entropy(model(x), y); loss.backward(); sgd.step(); sgd.zero_grad()``, the model in
  train mode, random images and labels. *compiled*: ``torch.compile(model, fullgraph=True)`` (Inductor), the
  optimiser step eager. Time: the median of ``repeats`` steps after 3 warm-up steps (which compile); the three
  heads' models are built side by side and timed round-robin, one step of each per round.
* **Head alone**: the head's forward + backward on detached features (B, F) requiring grad — what the head adds
  to a step — eager or compiled like the step. *Head share* = head alone ÷ step.
* **× linear**: the step's median time over the linear-head step's, same mode.

CPU runs use ``torch.set_num_threads(threads)``; the load average is printed before and after. On a shared
machine use ``--clock cpu``: one thread, timed by the thread's CPU time (``time.thread_time``; on CPU the forward,
the backward (autograd runs CPU work on the calling thread), the compiled code and the C++ kernel all run on it),
which other jobs preempting the process do not inflate; wall time under load varies by seconds per step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time

import timm
import torch
import torch.nn.functional as F
from torch import nn

from ugmm_vision.heads import LinearHead, UGMMHead

SETUPS = {
    "a": {"arch": "resnet18", "chans": 1, "size": 28, "batch": 128, "classes": 10},
    "b": {"arch": "resnet18", "chans": 3, "size": 64, "batch": 64, "classes": 1000},
    "c": {"arch": "resnet50", "chans": 3, "size": 224, "batch": 256, "classes": 1000},  # CUDA only
}
HEADS = {
    "linear": lambda f, c: LinearHead(f, c),
    "uGMM single": lambda f, c: UGMMHead(f, c),
    "uGMM hidden (64)": lambda f, c: UGMMHead(f, c, hidden=(64,)),
}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


CLOCK = time.perf_counter


def _timed(fn, device: str) -> float:
    start = CLOCK()
    fn()
    _sync(device)
    return CLOCK() - start


def _round_robin(fns: dict, repeats: int, device: str, warmup: int = 3) -> dict[str, float]:
    """Median time of each function, timed in turn (one call of each per round), so that a change of load on a
    shared machine falls on all of them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(_timed(fn, device))
    return {name: statistics.median(values) for name, values in times.items()}


def measure(setup: dict, heads: list[str], compiled: bool, device: str, repeats: int) -> dict[str, tuple[float, float]]:
    """{head: (step seconds, head-alone seconds)} for one set-up and mode, the heads timed round-robin."""
    torch._dynamo.reset()
    cuda = device == "cuda"
    x = torch.randn(setup["batch"], setup["chans"], setup["size"], setup["size"], device=device)
    if cuda:
        x = x.to(memory_format=torch.channels_last)
    y = torch.randint(setup["classes"], (setup["batch"],), device=device)
    steps, head_steps = {}, {}
    for name in heads:
        torch.manual_seed(0)  # the same backbone weights under every head
        backbone = timm.create_model(setup["arch"], pretrained=False, num_classes=0, in_chans=setup["chans"])
        head = HEADS[name](backbone.num_features, setup["classes"])
        model = nn.Sequential(backbone, head).to(device).train()
        if cuda:
            model = model.to(memory_format=torch.channels_last)
        run = torch.compile(model, fullgraph=True) if compiled else model
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step(run=run, opt=opt) -> None:
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(run(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        features = torch.randn(setup["batch"], backbone.num_features, device=device, requires_grad=True)
        head_run = torch.compile(head, fullgraph=True) if compiled else head

        def head_step(head_run=head_run, features=features) -> None:
            features.grad = None
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                out = head_run(features)
            out.float().sum().backward()

        steps[name], head_steps[name] = step, head_step
    step_s = _round_robin(steps, repeats, device)
    head_s = _round_robin(head_steps, repeats, device)
    return {name: (step_s[name], head_s[name]) for name in heads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"], help="cpu: one thread, thread CPU time")
    parser.add_argument("--setups", nargs="+", default=None, choices=list(SETUPS))
    parser.add_argument("--modes", nargs="+", default=["eager", "compiled"], choices=["eager", "compiled"])
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=list(HEADS), help="linear comes first")
    args = parser.parse_args()
    setups = args.setups or (["a", "b", "c"] if args.device == "cuda" else ["a", "b"])
    global CLOCK
    if args.clock == "cpu":
        if args.device != "cpu":
            parser.error("--clock cpu measures CPU runs only")
        args.threads, CLOCK = 1, time.thread_time
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    where = (
        torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {args.threads} threads, {args.clock} clock"
    )
    print(f"commit {commit}, torch {torch.__version__}, timm {timm.__version__}, {where}")
    print(f"load average before {os.getloadavg()}")
    for key in setups:
        setup = SETUPS[key]
        print(
            f"\n### ({key}) {setup['arch']}, {setup['chans']}×{setup['size']}×{setup['size']}, "
            f"batch {setup['batch']}, {setup['classes']} classes\n"
        )
        print("| head | mode | step ms | × linear step | head alone ms | head share of step |")
        print("|---|---|---:|---:|---:|---:|")
        for mode in args.modes:
            heads = ["linear", *(h for h in args.heads if h != "linear")]
            results = measure(setup, heads, mode == "compiled", args.device, args.repeats)
            linear_s = results["linear"][0]
            for head_name, (step_s, head_s) in results.items():
                print(
                    f"| {head_name} | {mode} | {1e3 * step_s:.1f} | {step_s / linear_s:.2f}× | {1e3 * head_s:.2f} | "
                    f"{head_s / step_s:.1%} |",
                    flush=True,
                )
    print(f"\nload average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
