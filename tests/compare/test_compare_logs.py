"""The comparison shows progress and leaves logs: per-run CSV logs, epochs and steps of the run in training."""

import csv
import json
from pathlib import Path

import pytest
import torch
from rich.progress import Progress
from torch.utils.data import DataLoader, TensorDataset

from ugmm_vision.backbones import SmallCNN
from ugmm_vision.cli import build_cli
from ugmm_vision.compare.runner import _RunProgress
from ugmm_vision.heads import LinearHead
from ugmm_vision.models import ImageClassifier

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
COMPARE = ["--config", str(CONFIGS / "digits.yaml"), "--config", str(CONFIGS / "compare_digits.yaml")]
HEADS = {"linear": {"class_path": "ugmm_vision.heads.LinearHead"}, "ugmm": {"class_path": "ugmm_vision.heads.UGMMHead"}}


@pytest.mark.slow
def test_compare_writes_a_csv_log_per_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["compare", *COMPARE, f"--heads={json.dumps(HEADS)}", "--seeds=[0]", "--epochs=2"]
    build_cli([*args, "--mode=frozen", "--trainer.limit_train_batches=3", "--shift=false", "--output_dir", "cmp"])
    for head in HEADS:
        for seed in (0,):
            with (tmp_path / f"cmp/runs/{head}/seed_{seed}/metrics.csv").open() as file:
                rows = list(csv.DictReader(file))
            epochs = {row["epoch"] for row in rows if row.get("val/acc")}
            assert epochs == {"0", "1"}, (head, seed)  # the validation curve of both epochs
            test_rows = [row for row in rows if row.get("test/id/acc")]  # the run's evaluation, one row
            assert len(test_rows) == 1 and 0 <= float(test_rows[0]["test/id/acc"]) <= 1
    summary = json.loads((tmp_path / "cmp/compare.json").read_text())["summary"]
    assert set(summary) == set(HEADS)


def test_run_progress_counts_epochs_and_steps(make_trainer):
    data = TensorDataset(torch.randn(12, 1, 8, 8), torch.arange(12) % 3)
    model = ImageClassifier(SmallCNN(in_chans=1, widths=(8,)), LinearHead, num_classes=3)
    with Progress(disable=True) as bar:
        task = bar.add_task("", total=None)
        trainer = make_trainer(max_epochs=2, callbacks=[_RunProgress(bar, task, "linear · seed 0")])
        trainer.fit(model, DataLoader(data, batch_size=5))  # 3 steps per epoch
        shown = bar.tasks[task]
        assert shown.total == 6 and shown.completed == 6
        assert shown.description == "  linear · seed 0: evaluating"  # after training, before evaluation
