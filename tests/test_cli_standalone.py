"""The CLI owns its optimiser (a top-level --optimizer keeps the parameter groups) and runs from a checkpoint alone."""

import csv
import json
from pathlib import Path

import pytest
import torch

from ugmm_vision.cli import build_cli
from ugmm_vision.heads import UGMMHead

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "digits.yaml")
QUICK = [
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=2",
    "--trainer.limit_val_batches=1",
    "--trainer.enable_progress_bar=false",
    "--model.init_args.backbone.init_args.widths=[8, 16]",
]


def test_top_level_optimizer_keeps_the_two_learning_rates(in_tmp):
    args = [
        "fit",
        "--config",
        CONFIG,
        *QUICK,
        "--model.init_args.backbone_lr=0.01",
        "--model.init_args.head_lr=0.2",
        "--model.init_args.lr_scheduler=null",
        "--optimizer=torch.optim.SGD",
        "--optimizer.lr=0.5",
        "--optimizer.momentum=0.9",
    ]
    cli = build_cli(args)
    (optimizer,) = cli.trainer.optimizers
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.9
    lrs = {group["name"]: group["lr"] for group in optimizer.param_groups}
    assert lrs == {"backbone_no_decay": 0.01, "backbone": 0.01, "head_no_decay": 0.2}
    saved = torch.load(in_tmp / "outputs/digits/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert saved["hyper_parameters"]["optimizer"]["class_path"] == "torch.optim.SGD"  # the model's own spec
    assert [g["lr"] for g in saved["optimizer_states"][0]["param_groups"]] == [0.01, 0.01, 0.2]


def test_learning_rate_monitor_of_the_config_shows_the_group_names(in_tmp):
    cli = build_cli(["fit", "--config", CONFIG, *QUICK])
    header = (Path(cli.trainer.logger.log_dir) / "metrics.csv").read_text().splitlines()[0].split(",")
    logged = {key for key in header if key.startswith("lr-")}
    assert logged == {"lr-AdamW/backbone", "lr-AdamW/backbone_no_decay", "lr-AdamW/head_no_decay"}
    assert build_cli(["fit", "--config", CONFIG, *QUICK, "--trainer.logger=false"]).trainer.state.finished


@pytest.mark.slow
def test_evaluate_and_predict_from_the_checkpoint_alone(in_tmp):
    head = json.dumps({"class_path": "ugmm_vision.heads.UGMMHead", "init_args": {"hidden": [6]}})
    build_cli(["fit", "--config", CONFIG, *QUICK, f"--model.init_args.head={head}"])
    ckpt = str(in_tmp / "outputs/digits/checkpoints/last.ckpt")
    logger = ["--trainer.logger=lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir=eval_logs"]
    cli = build_cli(["evaluate", "--ckpt_path", ckpt, "--output_dir", "report", "--shift=false", *logger])  # alone
    assert isinstance(cli.model.head, UGMMHead) and len(cli.model.head.layers) == 2
    assert cli.model.backbone.num_features == 16 and cli.model.hparams["backbone"]["init_args"]["widths"] == [8, 16]
    assert type(cli.datamodule).__name__ == "DigitsDataModule" and cli.datamodule.hparams.ood_classes == [8, 9]
    report = json.loads((in_tmp / "report/report.json").read_text())
    with open(Path(cli.trainer.logger.log_dir) / "metrics.csv") as file:  # the scalars reached the CSV logger
        (logged,) = list(csv.DictReader(file))
    assert float(logged["evaluate/id/acc"]) == pytest.approx(report["id"]["acc"])
    assert float(logged["evaluate/id/ece"]) == pytest.approx(report["id"]["ece"])
    predicted = build_cli(["predict", "--ckpt_path", ckpt, "--trainer.enable_progress_bar=false"])
    assert isinstance(predicted.model.head, UGMMHead)
    exported = in_tmp / "model.pt2"
    build_cli(["export", "--ckpt_path", ckpt, "--format=torch_export", f"--output={exported}"])  # alone, too
    program = torch.export.load(str(exported))
    images = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(images), cli.model.eval()(images), rtol=0, atol=1e-5)
