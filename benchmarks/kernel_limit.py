"""The fused uGMM kernel against the machine's own limit, and the no-grad inference path.

Run: ``python benchmarks/kernel_limit.py [--threads 2] [--repeats 7] [--shape 128 2048 500]``. Prints Markdown
tables; results are recorded in docs/benchmarks.md.

* **Exponential floor.** Two rates, over float32 values that stay in cache, called 200 times per timing: the
  kernels' own vectorised exponential (``ugmm_exp_f32`` in the C++ library, the polynomial the kernels use) and
  ``torch.exp(a, out=b)``. A uGMM forward pass needs one exponential per component (b, j, k), a training step two
  (the backward pass recomputes them), so the kernel's component rate over an exp rate is the fraction of that
  exponential limit it reaches (forward: evals/s ÷ exp/s; forward + backward: 2·evals/s ÷ exp/s).
* Both are measured on **one thread with the thread's CPU time** (``time.thread_time``: immune to other jobs
  preempting it on a shared machine), and on ``--threads`` threads with wall time (what a user sees; on a loaded
  machine both the limit and the kernel lose to the other jobs).
* **Inference path.** ``UGMMLayer`` in eval mode under ``torch.inference_mode()`` (no autograd record, nothing
  saved for backward): the forward kernel alone; and a 2048→1000 ``UGMMHead`` at batch 64 in images/s (wall).

Time: the median of ``repeats`` calls after two warm-up calls.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time

import torch

from ugmm_vision.heads import LinearHead, UGMMHead
from ugmm_vision.layers import UGMMLayer

CLOCK = time.perf_counter  # time.thread_time for the one-thread measurements


def _median_seconds(fn, repeats: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        start = CLOCK()
        fn()
        times.append(CLOCK() - start)
    return statistics.median(times)


def exp_rate(repeats: int, size: int = 1 << 16, calls: int = 200) -> float:
    """G exp/s of ``torch.exp(a, out=b)`` over ``size`` float32 values that stay in cache (256 KiB each),
    ``calls`` times per timing, arguments in (−20, 0] like shifted log-terms: the compute limit, not memory's."""
    a = -20 * torch.rand(size)
    b = torch.empty_like(a)

    def run() -> None:
        for _ in range(calls):
            torch.exp(a, out=b)

    return size * calls / _median_seconds(run, repeats) / 1e9


def kernel_exp_rate(repeats: int, size: int = 1 << 14, calls: int = 200) -> float:
    """G exp/s of the C++ kernels' vectorised exp on the calling thread (``size`` floats in cache)."""
    import ctypes

    from ugmm_vision.ops.cpu import cpu_library_error, load_cpu_library

    lib = load_cpu_library()
    if lib is None:
        raise RuntimeError(f"the C++ kernel library is unavailable: {cpu_library_error()}")
    fn = lib.ugmm_exp_f32
    fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64], ctypes.c_int
    a = -20 * torch.rand(size)
    b = torch.empty_like(a)
    return size * calls / _median_seconds(lambda: fn(a.data_ptr(), b.data_ptr(), size, calls), repeats) / 1e9


def layer_rates(shape: tuple[int, int, int], repeats: int) -> dict[str, float]:
    """G component evaluations/s of the fused layer: forward with grad, fwd+bwd, and inference (no grad)."""
    batch, n_in, n_out = shape
    torch.manual_seed(0)
    layer = UGMMLayer(n_in, n_out, backend="fused")
    x = torch.nn.functional.layer_norm(torch.randn(batch, n_in), (n_in,)).requires_grad_()
    evals = batch * n_in * n_out / 1e9

    def forward() -> None:
        layer(x)

    def step() -> None:
        x.grad = None
        layer.zero_grad(set_to_none=True)
        layer(x).sum().backward()

    def inference() -> None:
        with torch.inference_mode():
            layer(x.detach())

    layer.train()
    rates = {"forward": evals / _median_seconds(forward, repeats), "fwd+bwd": evals / _median_seconds(step, repeats)}
    layer.eval()
    rates["inference"] = evals / _median_seconds(inference, repeats)
    return rates


def head_inference(repeats: int, batch: int = 64, n_in: int = 2048, classes: int = 1000) -> dict[str, float]:
    """Images/s of a 2048→1000 head in eval mode under inference_mode, uGMM against linear."""
    torch.manual_seed(0)
    features = torch.randn(batch, n_in)
    out = {}
    for name, head in (("uGMM 2048→1000", UGMMHead(n_in, classes)), ("linear 2048→1000", LinearHead(n_in, classes))):
        head.eval()

        def run(head=head) -> None:
            with torch.inference_mode():
                head(features)

        out[name] = batch / _median_seconds(run, repeats)
    return out


def main() -> None:
    global CLOCK
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--shape", type=int, nargs=3, default=(128, 2048, 500), metavar=("B", "I", "O"))
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"commit {commit}, torch {torch.__version__}, load average before {os.getloadavg()}")
    shape = tuple(args.shape)
    torch.set_num_threads(1)
    CLOCK = time.thread_time
    own, torch_exp = kernel_exp_rate(args.repeats), exp_rate(args.repeats)
    print(f"\nOne thread, thread CPU time: the kernels' exp {own:.2f} G exp/s, torch.exp {torch_exp:.2f} G exp/s\n")
    print(f"| {shape} (B, I, O) | threads (clock) | G evals/s | exps/eval | of the kernels' exp | of torch.exp |")
    print("|---|---|---:|---:|---:|---:|")
    rows = (
        ("forward (grad enabled)", "forward", 1),
        ("forward + backward", "fwd+bwd", 2),
        ("inference", "inference", 1),
    )
    for threads, clock, label in (
        (1, time.thread_time, "1 (CPU time)"),
        (args.threads, time.perf_counter, f"{args.threads} (wall)"),
    ):
        torch.set_num_threads(threads)
        CLOCK = clock
        rates = layer_rates(shape, args.repeats)
        for name, key, exps in rows:
            if threads == 1:
                fractions = f"{exps * rates[key] / own:.0%} | {exps * rates[key] / torch_exp:.0%}"
            else:
                fractions = "– | –"  # the exp rates are one thread's; the wall rate shares the cores with other jobs
            print(f"| {name} | {label} | {rates[key]:.2f} | {exps} | {fractions} |")
    CLOCK = time.perf_counter
    print(f"\n| head, batch 64, eval + inference_mode, {args.threads} threads (wall) | images/s |")
    print("|---|---:|")
    for name, rate in head_inference(args.repeats).items():
        print(f"| {name} | {rate:,.0f} |")
    print(f"\nload average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
