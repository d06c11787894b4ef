"""``ugmm-vision fit --ckpt_path last`` after a hard kill mid-epoch continues exactly where the run stopped.

A fit process is killed (``os._exit``, no clean-up) part-way through its second epoch, right after a step
checkpoint; the resumed run's final weights, optimiser state and step count equal an uninterrupted run's. The
run uses mixing dropout, so the random number generator states matter as well as the training loader's position.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from ugmm_vision.cli import build_cli

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "digits.yaml")
KILL_STEP = 20  # digits: 15 steps per epoch, so this is the 6th batch of epoch 1
KILLED = 42


class KillAtStep(Callback):
    """Test-only: end the process abruptly when the given number of optimiser steps is done."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            os._exit(KILLED)  # like SIGKILL: no teardown, no final checkpoint


def _callback(class_path: str, **init_args) -> str:
    return "--trainer.callbacks+=" + json.dumps({"class_path": class_path, "init_args": init_args})


ARGS = [
    "fit",
    "--config",
    CONFIG,
    "--trainer.max_epochs=2",
    "--trainer.enable_progress_bar=false",
    "--model.init_args.backbone.init_args.widths=[8, 16, 32]",  # small: the test is about the loop, not accuracy
    "--model.init_args.head.init_args.mixing_dropout=0.2",
    "--model.init_args.lr_scheduler.init_args.T_max=2",
    _callback(
        "lightning.pytorch.callbacks.ModelCheckpoint",
        dirpath="outputs/digits/step_checkpoints",
        every_n_train_steps=5,
        save_top_k=0,
        save_last=True,
        enable_version_counter=False,
    ),
    _callback("ugmm_vision.callbacks.RNGStateCheckpoint"),
]


# Two worker processes: batches they had prefetched when the process died are neither lost nor repeated.
@pytest.mark.parametrize("num_workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_killed_fit_resumes_to_the_uninterrupted_result(tmp_path: Path, monkeypatch, num_workers: int) -> None:
    args = [*ARGS, f"--data.init_args.num_workers={num_workers}"]
    uninterrupted, interrupted = tmp_path / "uninterrupted", tmp_path / "interrupted"
    for folder in (uninterrupted, interrupted):
        folder.mkdir()

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    killed = subprocess.Popen(
        [sys.executable, "-m", "ugmm_vision.cli", *args, _callback("test_resume_training.KillAtStep", step=KILL_STEP)],
        cwd=interrupted,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    monkeypatch.chdir(uninterrupted)
    reference = build_cli(args)  # meanwhile, the same run without the kill
    _, stderr = killed.communicate(timeout=300)
    assert killed.returncode == KILLED, stderr[-3000:]
    step_last = interrupted / "outputs/digits/step_checkpoints/last.ckpt"
    saved = torch.load(step_last, map_location="cpu", weights_only=True)
    assert saved["global_step"] == KILL_STEP and saved["epoch"] == 1  # killed mid-epoch, after a step checkpoint

    monkeypatch.chdir(interrupted)
    resumed = build_cli([*args, "--ckpt_path", "last"])

    assert resumed.trainer.global_step == reference.trainer.global_step == 30  # no step lost, none repeated
    finals = [
        torch.load(folder / "outputs/digits/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
        for folder in (interrupted, uninterrupted)
    ]
    assert finals[0]["global_step"] == finals[1]["global_step"] == 30
    assert finals[0]["state_dict"].keys() == finals[1]["state_dict"].keys()
    for name, value in finals[1]["state_dict"].items():
        torch.testing.assert_close(finals[0]["state_dict"][name], value, rtol=0, atol=1e-6, msg=name)
    for got, want in zip(finals[0]["optimizer_states"], finals[1]["optimizer_states"], strict=True):
        for key, state in want["state"].items():
            for field, tensor in state.items():
                torch.testing.assert_close(got["state"][key][field], tensor, rtol=0, atol=1e-6, msg=f"{key}.{field}")
