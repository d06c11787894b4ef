"""The ``ugmm-vision`` LightningCLI on the shipped configs."""

import subprocess
import sys
from pathlib import Path

import pytest

from ugmm_vision.cli import build_cli
from ugmm_vision.heads import LinearHead, UGMMHead

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_fit_fast_dev_run_default_config(in_tmp):
    cli = build_cli(["fit", "--config", str(CONFIGS / "digits.yaml"), "--trainer.fast_dev_run=true"])
    assert isinstance(cli.model.head, UGMMHead)
    assert cli.model.num_classes == 8  # linked from the data module (digits 8 and 9 held out)
    assert cli.trainer.state.finished
    assert "train/loss" in cli.trainer.logged_metrics


def test_linear_override_config(in_tmp):
    args = ["fit", "--config", str(CONFIGS / "digits.yaml"), "--config", str(CONFIGS / "digits_linear.yaml")]
    cli = build_cli([*args, "--trainer.fast_dev_run=true"])
    assert isinstance(cli.model.head, LinearHead)
    assert cli.model.head.in_features == cli.model.backbone.num_features


def test_fit_then_test_from_checkpoint(in_tmp):
    config = str(CONFIGS / "digits.yaml")
    build_cli(["fit", "--config", config, "--trainer.max_epochs=1"])
    best = in_tmp / "outputs/digits/checkpoints/best.ckpt"
    assert best.is_file() and (in_tmp / "outputs/digits/checkpoints/last.ckpt").is_file()
    cli = build_cli(["test", "--config", config, "--ckpt_path", str(best)])
    metrics = cli.trainer.logged_metrics
    assert {"test/acc", "test/nll", "test/cal/ece", "test/ood/auroc_msp"} <= set(metrics)
    assert 0.0 <= float(metrics["test/ood/auroc_msp"]) <= 1.0


def test_unknown_config_key_is_rejected(in_tmp, capsys):
    with pytest.raises(SystemExit):
        build_cli(["fit", "--config", str(CONFIGS / "digits.yaml"), "--model.init_args.not_an_option=1"])
    assert "not_an_option" in capsys.readouterr().err


def test_console_script(in_tmp):
    # `make test` installs the package, so the entry point sits beside the interpreter.
    script = Path(sys.executable).parent / "ugmm-vision"
    assert script.exists(), f"console script missing at {script}: install the package (pip install -e .)"
    run = subprocess.run(
        [script, "fit", "--config", str(CONFIGS / "digits.yaml"), "--trainer.fast_dev_run=true"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]


def test_evaluate_writes_the_report_folder(in_tmp):
    import json

    import numpy as np
    import torch

    from ugmm_vision.functional import reliability_diagram_data
    from ugmm_vision.report import EvalOutputs, report_figures

    config = str(CONFIGS / "digits.yaml")
    build_cli(["fit", "--config", config, "--trainer.max_epochs=2"])
    ckpt = str(in_tmp / "outputs/digits/checkpoints/best.ckpt")
    cli = build_cli(
        [
            "evaluate",
            "--config",
            config,
            "--ckpt_path",
            ckpt,
            "--output_dir",
            "report",
            "--corruptions=[gaussian_noise, rotation]",
            "--severities=[1, 5]",
        ]
    )
    folder = in_tmp / "report"
    expected_files = {"report.json", "report.md", "reliability.png", "risk_coverage.png", "scores_ood.png", "shift.png"}
    assert expected_files <= {p.name for p in folder.iterdir()}
    report = json.loads((folder / "report.json").read_text())
    assert set(report) == {
        *("id", "id_temperature_scaled", "reliability", "ood", "ood_best", "shift", "conformal", "meta", "paths")
    }
    assert {"acc", "nll", "ece", "brier", "aurc", "augrc", "aece", "mce", "rmsce", "cwce"} <= set(report["id"])
    assert set(report["ood"]["ood"]) >= {"msp", "energy", "density_max", "density_logsumexp"}
    assert set(report["shift"]["per_corruption"]) == {"gaussian_noise", "rotation"}
    assert set(report["shift"]["per_corruption"]["rotation"]) == {"1", "5"}
    assert "| accuracy |" in (folder / "report.md").read_text()

    # The reliability data in the report, and the bars of the drawn diagram, equal the data function's output on
    # logits recomputed here from the evaluated weights.
    model, data = cli.model.eval(), cli.datamodule
    with torch.no_grad():
        logits = model(data.test_set.tensors[0])
    targets = data.test_set.tensors[1]
    diagram = reliability_diagram_data(logits.double().softmax(-1), targets, n_bins=15)
    nonempty = diagram.count > 0
    np.testing.assert_allclose(np.array(report["reliability"]["count"]), diagram.count.numpy())
    np.testing.assert_allclose(
        np.array(report["reliability"]["accuracy"], dtype=float)[nonempty.numpy()],
        diagram.accuracy[nonempty],
        rtol=1e-6,
    )
    figures = report_figures({"id": EvalOutputs(logits, targets)}, {"ood_best": {}, "shift": {}})
    bars = [p for p in figures["reliability"].axes[0].patches if p.get_gid() == "reliability/accuracy"]
    np.testing.assert_allclose([b.get_height() for b in bars], diagram.accuracy[nonempty].double(), rtol=1e-6)
