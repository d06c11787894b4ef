"""Tables of the evidence study (docs/results.md) from one or more ``compare.json`` files.

``ugmm-vision compare`` writes a summary that averages OOD AUROC over *all* OOD sets; the study needs near-OOD
(held-out classes, the resized digits) and far-OOD (noise, photo patches) apart, each OOD score family side by side,
and the issue's target checked by computation rather than by eye. This script reads the per-run reports that
``compare.json`` keeps and prints Markdown: quality, OOD by score, cost, and the target check.

    python benchmarks/evidence/tables.py '[outputs/evidence/fmnist_finetune/compare.json]'
    python benchmarks/evidence/tables.py '[outputs/evidence/transfer_frozen/compare.json]' \
        --near '[held_out, digits]'

A score for a row is chosen once for all its seeds (the highest mean AUROC), never per seed.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from jsonargparse import CLI

SCORE_FAMILIES = {
    "MSP": "msp",
    "energy": "energy",
    "head density": "density_logsumexp",
    "feature density (DDU)": "feature_density",
    "mutual information": "neg_mutual_information",
}


def column(figures: list[dict], key: str) -> list:
    """One figure of every run of a row."""
    return [f.get(key) for f in figures]


def mean_std(values: list[float], digits: int = 3) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def set_auroc(report: dict, sets: list[str], score: str) -> float | None:
    """Mean AUROC of ``score`` over the OOD sets of ``sets`` that the report has (None if any lacks the score)."""
    values = []
    for name in sets:
        by_score = report["ood"].get(f"ood/{name}")
        if by_score is None:
            continue
        if score not in by_score:
            return None
        values.append(by_score[score]["auroc"])
    return statistics.fmean(values) if values else None


def best_score(reports: list[dict], sets: list[str]) -> str | None:
    """The score with the highest AUROC over ``sets``, averaged over the seeds."""
    scores = set.intersection(*(set(s) for r in reports for s in r["ood"].values())) if reports else set()
    means = {}
    for score in scores:
        values = [set_auroc(r, sets, score) for r in reports]
        if all(v is not None for v in values):
            means[score] = statistics.fmean(values)
    return max(means, key=means.get) if means else None


def load(paths: list[str]) -> tuple[dict[str, list[dict]], dict[str, list[dict]], list[dict], list[str]]:
    """Pool the runs and reports of ``paths`` by head; a head and seed already read is kept from the first file
    (a method's compare retrains its base head), and each repeat is described, with both accuracies, in the list
    returned last."""
    reports, runs, settings, repeats = defaultdict(list), defaultdict(list), [], []
    first_run = {}
    for path in paths:
        data = json.loads(Path(path).read_text())
        settings.append(data["settings"])
        fresh = set()
        for run in data["runs"]:
            key = (run["head"], run["seed"])
            if key in first_run:
                kept = first_run[key]
                repeats.append(
                    f"{run['head']} seed {run['seed']} also in {path} (accuracy {run['acc']:.4f}, "
                    f"ECE {run['ece']:.4f}; kept: {kept['acc']:.4f}, {kept['ece']:.4f})"
                )
                continue
            first_run[key] = run
            fresh.add(key)
            runs[run["head"]].append(run)
        for report in data["reports"]:
            if (report["head"], report["seed"]) in fresh:
                reports[report["head"]].append(report)
    return reports, runs, settings, repeats


def tables(paths: list[str], near: list[str], far: list[str]) -> str:
    reports, runs, settings, repeats = load(paths)
    lines = ["```", *(json.dumps(s) for s in settings), "```", ""]
    if repeats:
        lines += ["Repeated head and seed (the first file's run is used):", "", *(f"* {r}" for r in repeats), ""]
    lines += [
        f"Near-OOD sets: {', '.join(near)}; far-OOD sets: {', '.join(far)} (AUROC averaged over the sets present). "
        "Mean ± std over seeds.",
        "",
        "| head / method | seeds | accuracy | NLL | ECE | ECE after TS | near-OOD AUROC: MSP | near-OOD AUROC: best "
        "(score) | far-OOD AUROC: best (score) | shift accuracy | shift ECE | conformal set size α=0.1 (coverage) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for head, rows in reports.items():
        figures = runs[head]
        near_best, far_best = best_score(rows, near), best_score(rows, far)
        cell = lambda key, digits=3: mean_std(column(figures, key), digits)  # noqa: E731, B023
        cells = [
            str(len(rows)),
            cell("acc"),
            cell("nll"),
            cell("ece"),
            cell("ts_ece"),
            mean_std([set_auroc(r, near, "msp") for r in rows]),
            f"{mean_std([set_auroc(r, near, near_best) for r in rows]) if near_best else '—'} ({near_best})",
            f"{mean_std([set_auroc(r, far, far_best) for r in rows]) if far_best else '—'} ({far_best})",
            cell("shift_acc"),
            cell("shift_ece"),
            f"{cell('cp_set_size_0.1', 2)} ({cell('cp_coverage_0.1')})",
        ]
        lines.append(f"| {head} | " + " | ".join(cells) + " |")
    lines += ["", "Near-OOD AUROC by OOD score (— where the row has no such score):", ""]
    lines += ["| head / method | " + " | ".join(SCORE_FAMILIES) + " |", "|---|" + "---:|" * len(SCORE_FAMILIES)]
    for head, rows in reports.items():
        cells = []
        for score in SCORE_FAMILIES.values():
            values = [set_auroc(r, near, score) for r in rows]
            cells.append(mean_std(values) if all(v is not None for v in values) else "—")
        lines.append(f"| {head} | " + " | ".join(cells) + " |")
    lines += ["", "Near-OOD AUROC of the best score, per set:", ""]
    lines += ["| head / method | " + " | ".join(near) + " |", "|---|" + "---:|" * len(near)]
    for head, rows in reports.items():
        score = best_score(rows, near)
        lines.append(
            f"| {head} | " + " | ".join(mean_std([set_auroc(r, [n], score) for r in rows]) for n in near) + " |"
        )
    lines += ["", "Cost (wall-clock in that run; training seconds summed over a method's members):", ""]
    lines += [
        "| head / method | head parameters | train s / epoch | head µs / image | model µs / image |",
        "|---|---:|---:|---:|---:|",
    ]
    for head, figures in runs.items():
        params = figures[0].get("params")
        times = [
            mean_std(column(figures, key), 1) for key in ("train_s_per_epoch", "head_latency_us", "model_latency_us")
        ]
        lines.append(f"| {head} | {params:,} | " + " | ".join(times) + " |")
    lines += ["", *target_check(reports, runs, near)]
    return "\n".join(lines) + "\n"


def target_check(reports: dict, runs: dict, near: list[str]) -> list[str]:
    """The issue's target, computed: a uGMM row within 0.3 accuracy points of linear, with lower ECE and higher
    near-OOD AUROC than both linear + temperature scaling and DDU's feature density."""
    if "linear" not in runs:
        return []
    mean = lambda head, key: statistics.fmean(f[key] for f in runs[head])  # noqa: E731
    linear_acc, linear_ts_ece = mean("linear", "acc"), mean("linear", "ts_ece")
    linear_near = statistics.fmean(set_auroc(r, near, best_score(reports["linear"], near)) for r in reports["linear"])
    ddu = "linear+ddu" if "linear+ddu" in runs else None
    ddu_ece = mean(ddu, "ece") if ddu else None
    ddu_near = statistics.fmean(set_auroc(r, near, "feature_density") for r in reports[ddu]) if ddu else None
    lines = [
        "Target check (means over seeds): accuracy within 0.3 points of linear "
        f"({linear_acc:.4f}); ECE below linear + TS ({linear_ts_ece:.4f})"
        + (f" and DDU ({ddu_ece:.4f})" if ddu else "")
        + f"; near-OOD AUROC above linear's best score ({linear_near:.4f})"
        + (f" and DDU's feature density ({ddu_near:.4f})" if ddu else "")
        + ".",
        "",
        "| uGMM row | Δ accuracy (points) | ECE | ECE after TS | near-OOD AUROC (best score) | meets the target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for head in runs:
        if not head.startswith("ugmm"):
            continue
        acc, ece, ts_ece = mean(head, "acc"), mean(head, "ece"), mean(head, "ts_ece")
        score = best_score(reports[head], near)
        auroc = statistics.fmean(set_auroc(r, near, score) for r in reports[head])
        # the head as shipped (ECE) or with its own temperature scaling (a user would use the better one)
        own_ece = min(ece, ts_ece)
        ok = (
            100 * (acc - linear_acc) >= -0.3
            and own_ece < linear_ts_ece
            and (ddu_ece is None or own_ece < ddu_ece)
            and auroc > linear_near
            and (ddu_near is None or auroc > ddu_near)
        )
        lines.append(
            f"| {head} | {100 * (acc - linear_acc):+.2f} | {ece:.4f} | {ts_ece:.4f} | {auroc:.4f} ({score}) | "
            f"{'yes' if ok else 'no'} |"
        )
    return lines


def main(
    compare_json: list[str],
    near: list[str] = ["held_out", "digits"],  # noqa: B006 - shown in --help
    far: list[str] = ["gaussian", "uniform", "constant", "photo_patches"],  # noqa: B006
) -> None:
    """Print the study's Markdown tables.

    Args:
        compare_json: compare.json files (their runs are pooled by head name).
        near: near-OOD set names (``ood/<name>``).
        far: far-OOD set names.
    """
    print(tables(compare_json, near, far), end="")


if __name__ == "__main__":
    CLI(main)
