"""One uGMM layer's training step (forward + backward): the reference formula (eager and ``torch.compile``d), the
fused kernels, and ``nn.Linear`` for scale.

Run: ``python benchmarks/ugmm_layer.py [--quick] [--device cpu|cuda] [--threads 2] [--repeats 5] [--cap-gib 10]
[--no-resnet]``. Prints a Markdown table; results are recorded in docs/benchmarks.md.

Method:

* Every (shape, method) case runs in a fresh Python process (``multiprocessing`` "spawn"), with
  ``torch.set_num_threads(threads)`` on CPU. A step is ``layer(x).sum().backward()`` with ``x`` requiring grad
  (as in a head, whose gradient flows into the backbone), gradients reset to None before each step.
* Time: the median (and the best) of ``repeats`` steps after two warm-up steps (which include
  ``torch.compile``'s compilation). Speed-ups compare medians.
* G evals/s: B·O·I component evaluations per training step divided by the step time (for ``nn.Linear``: its
  B·O·I multiply-adds, for scale).
* Peak extra memory. CUDA: ``torch.cuda.max_memory_allocated`` during one step minus the allocation before it.
  CPU: the resident set size (``/proc/self/statm``) sampled every 0.5 ms during one step, minus the RSS before
  it; first glibc's mmap threshold is lowered to 64 KiB (``mallopt``) and the heap trimmed (``malloc_trim``), so
  that every allocation of 64 KiB or more is fresh memory that shows in the RSS while it lives.
* The reference is not run where its estimated peak (``REFERENCE_COPIES`` (B, O, I) tensors, as measured at
  (128, 2048, 500)) exceeds the memory cap; the table says so.
* On CUDA the benchmark also times a ResNet-50 (timm, ``pretrained=False``) training step at batch 256 (bf16
  autocast, channels-last, SGD) with a uGMM head 2048→1000 (fused, and reference) against a linear head.
"""

from __future__ import annotations

import ctypes
import datetime
import gc
import multiprocessing
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable

import torch
from torch import nn

SHAPES = [(128, 512, 10), (128, 2048, 100), (128, 2048, 500), (256, 2048, 1000)]  # (B, I, O)
QUICK_SHAPES = SHAPES[:2]
METHODS = ("reference (eager)", "reference (torch.compile)", "fused", "nn.Linear")
# (B, O, I) float32 tensors alive at the reference's peak, measured at (128, 2048, 500) on CPU: 6 and 1.
REFERENCE_COPIES = {"reference (eager)": 6.5, "reference (torch.compile)": 1.5}
WARMUP = 2
GIB = 1 << 30


def _layer(method: str, n_in: int, n_out: int, device: str) -> Callable[[torch.Tensor], torch.Tensor]:
    from ugmm_vision.layers import UGMMLayer

    if method == "nn.Linear":
        return nn.Linear(n_in, n_out, device=device)
    layer = UGMMLayer(n_in, n_out, backend="fused" if method == "fused" else "reference", device=device)
    return torch.compile(layer) if method == "reference (torch.compile)" else layer


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _expose_allocations_in_rss() -> None:
    """Make every allocation of 64 KiB or more a fresh mmap (glibc), and give freed heap memory back."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: RSS growth then misses memory the allocator reuses


class _PeakRSS:
    """Samples the RSS every 0.5 ms on a background thread while the ``with`` block runs."""

    def __enter__(self) -> _PeakRSS:
        self.base = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.0005)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(step: Callable[[], None], device: str, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def _peak_extra_bytes(step: Callable[[], None], device: str) -> int:
    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    _expose_allocations_in_rss()
    with _PeakRSS() as probe:
        step()
    return probe.peak - probe.base


def measure_layer(method: str, shape: tuple[int, int, int], device: str, threads: int, repeats: int) -> dict:
    """Runs in a fresh process: median step time and peak extra memory of one (shape, method) case."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    batch, n_in, n_out = shape
    layer = _layer(method, n_in, n_out, device)
    params = list(layer.parameters())
    x = torch.randn(batch, n_in, device=device, requires_grad=True)

    def step() -> None:
        for p in [*params, x]:
            p.grad = None
        layer(x).sum().backward()

    _timed(step, device, WARMUP)
    times = _timed(step, device, repeats)
    return {"seconds": statistics.median(times), "best": min(times), "peak_bytes": _peak_extra_bytes(step, device)}


def measure_resnet(head_kind: str, device: str, repeats: int, batch: int = 256) -> dict:
    """Runs in a fresh process: a ResNet-50 training step (bf16 autocast) with a linear or uGMM head."""
    import timm

    from ugmm_vision.heads import LinearHead, UGMMHead

    torch.manual_seed(0)
    backbone = timm.create_model("resnet50", pretrained=False, num_classes=0)
    if head_kind == "linear":
        head = LinearHead(backbone.num_features, 1000)
    else:
        head = UGMMHead(backbone.num_features, 1000, backend=head_kind.removeprefix("uGMM "))
    model = nn.Sequential(backbone, head).to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(batch, 3, 224, 224, device=device).to(memory_format=torch.channels_last)
    labels = torch.randint(0, 1000, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device, dtype=torch.bfloat16):
            logits = model(images)
        nn.functional.cross_entropy(logits.float(), labels).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    _timed(step, device, 3)
    times = _timed(step, device, repeats)
    return {"seconds": statistics.median(times), "peak_bytes": _peak_extra_bytes(step, device)}


def _in_fresh_process(fn: Callable[..., dict], *args: object) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def _fmt_ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}×" if value >= 1 else f"{value:.2f}×"


def _table(shape: tuple[int, int, int], results: dict[str, dict]) -> list[str]:
    batch, n_in, n_out = shape
    evals = batch * n_in * n_out
    fused = results["fused"]
    rows = []
    for method, r in results.items():
        if r.get("skipped"):
            rows.append(f"| {shape} | {method} | {r['skipped']} | – | – | – | – |")
            continue
        speedup = r["seconds"] / fused["seconds"]
        mem_ratio = fused["peak_bytes"] / r["peak_bytes"] if r["peak_bytes"] > 0 else None
        rows.append(
            f"| {shape} | {method} | {r['seconds'] * 1e3:.1f} / {r['best'] * 1e3:.1f} | "
            f"{evals / r['seconds'] / 1e9:.2f} | "
            f"{r['peak_bytes'] / 2**20:.0f} | {_fmt_ratio(speedup)} | {_fmt_ratio(mem_ratio)} |"
        )
    return rows


def _machine(device: str, threads: int) -> str:
    if device == "cuda":
        what = torch.cuda.get_device_name()
    else:
        what = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as f:
                what = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        what += f", {os.cpu_count()} cores, {threads} threads"
    return f"{what}; torch {torch.__version__}; Python {platform.python_version()}"


def _parse(argv: list[str]) -> dict:
    options: dict = {"quick": False, "device": "cpu", "threads": 2, "repeats": 5, "cap_gib": None, "resnet": True}
    args = iter(argv)
    for arg in args:
        key, _, value = arg.removeprefix("--").partition("=")
        key = key.replace("-", "_")
        if key in ("quick", "no_resnet"):
            options["quick" if key == "quick" else "resnet"] = key == "quick"
        elif key in options:
            value = value or next(args)
            options[key] = type(options[key] if options[key] is not None else 1.0)(value)
        else:
            raise SystemExit(f"unknown option {arg!r}; see the module docstring for the options")
    return options


def main(argv: list[str]) -> None:
    opts = _parse(argv)
    device, threads, repeats = opts["device"], opts["threads"], opts["repeats"]
    if opts["quick"]:
        repeats = min(repeats, 2)
    cap = opts["cap_gib"]
    if cap is None:
        cap = 10.0 if device == "cpu" else 0.5 * torch.cuda.get_device_properties(0).total_memory / GIB
    print(f"{datetime.date.today()} · {_machine(device, threads)} · median of {repeats} steps · cap {cap:.0f} GiB")
    print(f"load average at start (1, 5, 15 min): {os.getloadavg()}\n")
    print(
        "| shape (B, I, O) | method | fwd+bwd ms (median / best) | G evals/s | peak extra MiB | fused speed-up "
        "| fused/this memory |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for shape in QUICK_SHAPES if opts["quick"] else SHAPES:
        batch, n_in, n_out = shape
        results = {}
        for method in METHODS:
            estimate = REFERENCE_COPIES.get(method, 0.0) * batch * n_in * n_out * 4 / GIB
            if estimate > cap:
                results[method] = {"skipped": f"not run: needs ~{estimate:.0f} GiB > cap {cap:.0f} GiB"}
                continue
            results[method] = _in_fresh_process(measure_layer, method, shape, device, threads, repeats)
        print("\n".join(_table(shape, results)), flush=True)
    if device == "cuda" and opts["resnet"] and not opts["quick"]:
        print("\n| ResNet-50 training step, batch 256, bf16 autocast | ms | peak MiB |\n|---|---:|---:|")
        for head_kind in ("linear", "uGMM fused", "uGMM reference"):
            r = _in_fresh_process(measure_resnet, head_kind, device, repeats)
            print(f"| {head_kind} head 2048→1000 | {r['seconds'] * 1e3:.1f} | {r['peak_bytes'] / 2**20:.0f} |")
    print(f"\nload average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main(sys.argv[1:])
