"""The Fashion-MNIST preset end to end on tiny files in the Debian layout: fit, then a report naming every OOD set."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from ugmm_vision.cli import build_cli
from ugmm_vision.data.photo_patches import write_photo_patches

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
_spec = importlib.util.spec_from_file_location("idx_helpers", Path(__file__).with_name("idx_helpers.py"))
idx_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(idx_helpers)

OOD_SETS = ["ood/held_out", "ood/digits", "ood/gaussian", "ood/uniform", "ood/constant", "ood/photo_patches"]


@pytest.mark.slow
def test_fashion_mnist_preset_fits_and_reports_every_offline_ood_set(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the preset's relative paths: outputs/fashion_mnist, data/ood/photo_patches
    root = tmp_path / "fashion-mnist"
    idx_helpers.write_dataset(root, np.random.default_rng(0), train_per_class=8, test_per_class=2)
    write_photo_patches(tmp_path / "data" / "ood" / "photo_patches", num_images=12, size=28)
    config = ["--config", str(CONFIGS / "fashion_mnist.yaml")]
    tiny = [f"--data.init_args.root={root}", "--data.init_args.batch_size=8"]
    budget = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"]
    cli = build_cli(["fit", *config, *tiny, *budget])
    assert cli.trainer.state.finished and cli.model.num_classes == 9  # class 9 held out
    assert list(cli.datamodule.test_dataloader()) == ["id", *OOD_SETS]
    capsys.readouterr()
    build_cli(
        [
            "evaluate", *config, *tiny, "--ckpt_path", "outputs/fashion_mnist/checkpoints/last.ckpt",
            "--output_dir", "outputs/fashion_mnist/report", "--shift", "false",
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "outputs/fashion_mnist/report/report.json").read_text())
    assert sorted(report["ood"]) == sorted(OOD_SETS)
    for name in OOD_SETS:
        assert f"OOD AUROC {name} (msp)" in printed, name
