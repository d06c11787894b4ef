"""Two-process DDP (gloo, CPU) through the CLI gives the one-process metrics, report and predictions.

One subprocess runs this file as a script: ``fit``, ``test``, ``evaluate`` and ``predict`` with
``--trainer.strategy=ddp --trainer.devices=2 --trainer.accelerator=cpu`` (Lightning relaunches the script for
rank 1; the later commands reuse the process group). The test then repeats the evaluation in one process on the
checkpoint the DDP fit wrote and compares.

Lightning's ``DistributedSampler`` pads validation and test sets whose size is odd with repeated samples, so
the metric comparison uses split fractions that make every set even (checked below); each sample is then seen
once and the synchronised torchmetrics states equal the one-process ones. ``evaluate`` and ``predict`` use the
unrepeated sampler and gather the ranks' shares, so they run on the default (odd) sizes. Training itself is not
compared step by step: each rank normalises its own half-batch (BatchNorm) and draws its own data order.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "configs" / "digits.yaml")
PREDICT_CONFIG = str(ROOT / "configs" / "predict_folder.yaml")
DDP = ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu"]
SMALL = [
    "--config",
    CONFIG,
    "--trainer.logger=false",
    "--trainer.enable_progress_bar=false",
    "--model.init_args.backbone.init_args.widths=[8, 16, 32]",
    "--model.init_args.head.init_args.hidden=[16]",  # stacked uGMM: hidden densities are gathered too
]
EVEN = ["--data.init_args.test_fraction=0.199", "--data.init_args.val_fraction=0.1495"]  # 288 test, 216 val
# The checkpoint's own data configuration is the default of later commands (standalone checkpoints): the evaluate
# runs set the module's default fractions back explicitly, so that its 289 test items split unevenly over two ranks.
UNEVEN = ["--data.init_args.test_fraction=0.2", "--data.init_args.val_fraction=0.15"]
LAST = "outputs/digits/checkpoints/last.ckpt"
NUM_IMAGES = 5  # odd: the two ranks predict 3 and 2 images


def evaluate_args(ckpt: str, output_dir: str) -> list[str]:
    return [
        "evaluate",
        *SMALL,
        *UNEVEN,
        "--ckpt_path",
        ckpt,
        "--output_dir",
        output_dir,
        "--corruptions=[gaussian_noise]",
        "--severities=[1]",
    ]


def predict_args(ckpt: str, images: str) -> list[str]:
    return [
        "predict",
        *SMALL,
        "--config",
        PREDICT_CONFIG,
        "--ckpt_path",
        ckpt,
        f"--data.init_args.root={images}",
        "--data.init_args.image_size=8",
        "--data.init_args.num_channels=1",
        "--data.init_args.class_names=[zero, one, two, three, four, five, six, seven]",
    ]


def ddp_script(workdir: str, images: str) -> None:
    """What each DDP rank runs: fit, then test, evaluate and predict on the checkpoint; rank 0 saves metrics."""
    from ugmm_vision.cli import build_cli

    os.chdir(workdir)
    fit = build_cli(["fit", *SMALL, *EVEN, *DDP, "--trainer.max_epochs=1"])
    val = {k: float(v) for k, v in fit.trainer.callback_metrics.items() if k.startswith("val/")}
    tested = build_cli(["test", *SMALL, *EVEN, *DDP, "--ckpt_path", LAST])
    test = {k: float(v) for k, v in tested.trainer.callback_metrics.items() if k.startswith("test/")}
    build_cli([*evaluate_args(LAST, "report"), *DDP])
    build_cli([*predict_args(LAST, images), *DDP])
    if fit.trainer.is_global_zero:
        result = {"val": val, "test": test, "world_size": fit.trainer.world_size}
        Path("ddp_results.json").write_text(json.dumps(result))


def write_images(folder: Path) -> None:
    from PIL import Image

    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(NUM_IMAGES):
        pixels = (torch.rand(8, 8, generator=g) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels, "L").save(folder / f"digit_{i}.png")


def test_even_split_sizes() -> None:
    """The fractions in EVEN give even validation and test sets (and the OOD set of digits 8, 9 is even)."""
    from ugmm_vision.data import DigitsDataModule

    dm = DigitsDataModule(ood_classes=(8, 9), test_fraction=0.199, val_fraction=0.1495)
    dm.setup("fit")
    assert [len(s) % 2 for s in (dm.val_set, dm.test_set, dm.ood_set)] == [0, 0, 0]


@pytest.mark.filterwarnings("ignore")
def test_ddp_matches_one_process(tmp_path: Path, monkeypatch) -> None:
    from ugmm_vision.cli import build_cli

    images = tmp_path / "images"
    write_images(images)
    ddp_dir = tmp_path / "ddp"
    ddp_dir.mkdir()
    run = subprocess.run(
        [sys.executable, __file__, str(ddp_dir), str(images)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    ddp = json.loads((ddp_dir / "ddp_results.json").read_text())
    assert ddp["world_size"] == 2
    assert {"val/acc", "val/nll", "val/cal/ece"} <= set(ddp["val"]) and all(map(math.isfinite, ddp["val"].values()))

    ckpt = str(ddp_dir / LAST)
    monkeypatch.chdir(tmp_path)
    validated = build_cli(["validate", *SMALL, *EVEN, "--ckpt_path", ckpt])
    tested = build_cli(["test", *SMALL, *EVEN, "--ckpt_path", ckpt])
    for stage, cli in (("val", validated), ("test", tested)):
        single = {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith(f"{stage}/")}
        assert set(single) == set(ddp[stage]) and single
        for name, value in single.items():
            assert math.isclose(ddp[stage][name], value, rel_tol=1e-5, abs_tol=1e-6), (name, ddp[stage][name], value)

    build_cli(evaluate_args(ckpt, "report"))
    one = json.loads((tmp_path / "report" / "report.json").read_text())
    two = json.loads((ddp_dir / "report" / "report.json").read_text())
    assert two["meta"]["sizes"] == one["meta"]["sizes"]  # every item once: no sampler padding
    assert one["meta"]["sizes"]["id"] % 2 == 1  # ranks held 145 and 144 test items
    _assert_nested_close(two, one, path="report")

    build_cli(predict_args(ckpt, str(images)))
    rows = [list(csv.DictReader((d / "outputs/predictions/predictions.csv").open())) for d in (ddp_dir, tmp_path)]
    assert [len(r) for r in rows] == [NUM_IMAGES, NUM_IMAGES]
    for got, want in zip(*rows, strict=True):
        assert got["path"] == want["path"] and got["predicted_class"] == want["predicted_class"]
        for column in ("probability", "entropy", "energy_score", "log_density", "hidden_density"):
            assert math.isclose(float(got[column]), float(want[column]), rel_tol=1e-5, abs_tol=1e-6), column


def _assert_nested_close(got, want, path: str) -> None:
    if isinstance(want, dict):
        keys = set(want) - {"paths", "ckpt_path"}
        assert keys <= set(got), f"{path}: missing {keys - set(got)}"
        for key in keys:
            _assert_nested_close(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_nested_close(g, w, f"{path}[{i}]")
    elif isinstance(want, float):
        assert math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6), (path, got, want)
    else:
        assert got == want, (path, got, want)


if __name__ == "__main__":
    ddp_script(sys.argv[1], sys.argv[2])
