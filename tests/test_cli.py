"""The ``ugmm-vision`` LightningCLI on the shipped configs."""

import subprocess
import sys
from pathlib import Path

import pytest

from ugmm_vision.cli import main
from ugmm_vision.heads import LinearHead, UGMMHead

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_fit_fast_dev_run_default_config(in_tmp):
    cli = main(["fit", "--config", str(CONFIGS / "digits.yaml"), "--trainer.fast_dev_run=true"])
    assert isinstance(cli.model.head, UGMMHead)
    assert cli.model.num_classes == 8  # linked from the data module (digits 8 and 9 held out)
    assert cli.trainer.state.finished
    assert "train/loss" in cli.trainer.logged_metrics


def test_linear_override_config(in_tmp):
    args = ["fit", "--config", str(CONFIGS / "digits.yaml"), "--config", str(CONFIGS / "digits_linear.yaml")]
    cli = main([*args, "--trainer.fast_dev_run=true"])
    assert isinstance(cli.model.head, LinearHead)
    assert cli.model.head.in_features == cli.model.backbone.num_features


def test_fit_then_test_from_checkpoint(in_tmp):
    config = str(CONFIGS / "digits.yaml")
    main(["fit", "--config", config, "--trainer.max_epochs=1"])
    best = in_tmp / "outputs/digits/checkpoints/best.ckpt"
    assert best.is_file() and (in_tmp / "outputs/digits/checkpoints/last.ckpt").is_file()
    cli = main(["test", "--config", config, "--ckpt_path", str(best)])
    metrics = cli.trainer.logged_metrics
    assert {"test/acc", "test/nll", "test/cal/ece", "test/ood/auroc_msp"} <= set(metrics)
    assert 0.0 <= float(metrics["test/ood/auroc_msp"]) <= 1.0


def test_unknown_config_key_is_rejected(in_tmp, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(CONFIGS / "digits.yaml"), "--model.init_args.not_an_option=1"])
    assert "not_an_option" in capsys.readouterr().err


def test_console_script(in_tmp):
    # `make test` installs the package, so the entry point sits beside the interpreter.
    script = Path(sys.executable).parent / "ugmm-vision"
    assert script.exists(), f"console script missing at {script}: install the package (pip install -e .)"
    run = subprocess.run(
        [script, "fit", "--config", str(CONFIGS / "digits.yaml"), "--trainer.fast_dev_run=true"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
