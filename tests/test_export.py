"""``ugmm-vision export``: TorchScript, ONNX (run by onnxruntime) and torch.export files give the model's logits."""

from __future__ import annotations

from pathlib import Path

import lightning
import pytest
import torch

from ugmm_vision.calibration import fit_temperature
from ugmm_vision.cli import build_cli
from ugmm_vision.export import EXPORT_SUFFIXES, ExportedClassifier, FrozenUGMMLayer, load_exported, prepare_for_export

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "digits.yaml")
HIDDEN = "--model.init_args.head.init_args.hidden=[16]"  # two uGMM layers, both frozen for export


@pytest.fixture(autouse=True)
def _in_scratch_folder(tmp_path_factory, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))  # the config's logs and saved config.yaml land there


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A checkpoint whose weights are not the configured initialisation (every parameter perturbed)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("cwd"))
        cli = build_cli(
            ["validate", "--config", CONFIG, HIDDEN, "--trainer.limit_val_batches=0", "--trainer.logger=false"]
        )
    state = cli.model.state_dict()
    g = torch.Generator().manual_seed(1)
    for value in state.values():
        if value.is_floating_point():
            value.add_(0.1 * torch.randn(value.shape, generator=g))
    path = tmp_path_factory.mktemp("ckpt") / "perturbed.ckpt"
    torch.save({"state_dict": state, "pytorch-lightning_version": lightning.__version__}, path)
    return path


def _export(tmp_path: Path, checkpoint: Path, *extra: str):
    return build_cli(["export", "--config", CONFIG, HIDDEN, "--ckpt_path", str(checkpoint), *extra])


@pytest.mark.parametrize("fmt", ["torchscript", "onnx", "torch_export"])
def test_exported_logits_match_the_lightning_model(tmp_path: Path, checkpoint: Path, fmt: str) -> None:
    output = tmp_path / f"model{EXPORT_SUFFIXES[fmt]}"
    if fmt == "torchscript":  # still works, and says it is deprecated
        with pytest.warns(FutureWarning, match="'torchscript' export format is deprecated"):
            cli = _export(tmp_path, checkpoint, f"--format={fmt}", f"--output={output}")
    else:
        cli = _export(tmp_path, checkpoint, f"--format={fmt}", f"--output={output}")
    assert output.is_file() and [p.name for p in tmp_path.iterdir()] == [output.name]  # no temporary file left
    model = cli.model.eval()
    torch.testing.assert_close(
        model.state_dict()["head.layers.0.mu"], torch.load(checkpoint)["state_dict"]["head.layers.0.mu"]
    )
    run = load_exported(output, fmt)
    g = torch.Generator().manual_seed(0)
    for batch in (1, 5):  # any batch size
        images = torch.randn(batch, 1, 8, 8, generator=g)
        with torch.no_grad():
            expected = model(images)  # the Lightning model, fused uGMM kernels
        torch.testing.assert_close(run(images), expected, rtol=0, atol=1e-5)


def test_export_with_temperature_and_calibration(tmp_path: Path, checkpoint: Path) -> None:
    images = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    fixed = _export(tmp_path, checkpoint, "--format=onnx", f"--output={tmp_path / 'fixed.onnx'}", "--temperature=2.5")
    model = fixed.model.eval()
    with torch.no_grad():
        logits = model(images)
    torch.testing.assert_close(load_exported(tmp_path / "fixed.onnx", "onnx")(images), logits / 2.5, rtol=0, atol=1e-5)

    calibrated = _export(
        tmp_path, checkpoint, "--format=torch_export", f"--output={tmp_path / 'cal.pt2'}", "--calibrate=true"
    )
    data = calibrated.datamodule
    with torch.no_grad():
        val_logits = calibrated.model.eval()(data.val_set.tensors[0])
    temperature = fit_temperature(val_logits, data.val_set.tensors[1])  # independently, from the same weights
    assert temperature != pytest.approx(1.0, abs=1e-3)
    got = load_exported(tmp_path / "cal.pt2", "torch_export")(images)
    torch.testing.assert_close(got, logits / temperature, rtol=1e-4, atol=1e-5)


def test_export_rejects_bad_arguments(tmp_path: Path, checkpoint: Path) -> None:
    with pytest.raises(ValueError, match="either `temperature` or `calibrate`"):
        _export(tmp_path, checkpoint, "--temperature=2", "--calibrate=true", f"--output={tmp_path / 'x.onnx'}")
    with pytest.raises(ValueError, match="`input_shape`"):
        _export(tmp_path, checkpoint, "--input_shape=[8, 8]", f"--output={tmp_path / 'x.onnx'}")
    with pytest.raises(SystemExit):  # not one of the formats: the CLI's own check
        _export(tmp_path, checkpoint, "--format=tflite")
    assert not any(tmp_path.iterdir())


def test_prepared_module_replaces_every_ugmm_layer(checkpoint: Path) -> None:
    cli = build_cli(["validate", "--config", CONFIG, HIDDEN, "--trainer.limit_val_batches=0", "--trainer.logger=false"])
    exported = prepare_for_export(cli.model, temperature=1.0)
    assert isinstance(exported, ExportedClassifier) and not exported.training
    kinds = [type(m).__name__ for m in exported.modules()]
    assert kinds.count(FrozenUGMMLayer.__name__) == 2 and "UGMMLayer" not in kinds
    assert not any(p.requires_grad for p in exported.parameters())
    assert any(type(m).__name__ == "UGMMLayer" for m in cli.model.modules())  # the model itself is unchanged
    with pytest.raises(ValueError, match="`temperature`"):
        prepare_for_export(cli.model, temperature=0.0)
