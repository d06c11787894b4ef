"""Bad checkpoint files: truncated, empty, foreign or from another model — a clear error naming the file, which is
left byte-identical — through ``trainer.test(ckpt_path=...)``, ``ImageClassifier.load_from_checkpoint`` and the
CLI's ``test``/``evaluate --ckpt_path``."""

import hashlib
import os
from pathlib import Path

import lightning as L
import pytest
import torch

from ugmm_vision.backbones import SmallCNN
from ugmm_vision.cli import build_cli
from ugmm_vision.data import DigitsDataModule
from ugmm_vision.heads import LinearHead, UGMMHead
from ugmm_vision.models import ImageClassifier

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _fit_checkpoint(folder: Path, model: ImageClassifier, make_trainer) -> Path:
    L.seed_everything(0, verbose=False)
    trainer = make_trainer(
        max_epochs=1, limit_train_batches=2, limit_val_batches=1, enable_checkpointing=True, default_root_dir=folder
    )
    trainer.fit(model, DigitsDataModule(ood_classes=(8, 9), batch_size=128))
    return Path(trainer.checkpoint_callback.best_model_path)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, make_model, make_trainer) -> dict[str, Path]:
    """A good checkpoint of the tiny uGMM model, and bad files of every kind next to it."""
    folder = tmp_path_factory.mktemp("checkpoints")
    good = _fit_checkpoint(folder / "ugmm", make_model(), make_trainer)
    data = good.read_bytes()
    files = {
        "good": good,
        "other-model": _fit_checkpoint(folder / "linear", make_model(head=LinearHead), make_trainer),  # linear head
        "truncated": folder / "truncated.ckpt",
        "empty": folder / "empty.ckpt",
        "text": folder / "notes.ckpt",
        "state-dict-only": folder / "state_dict.ckpt",
        "random-bytes": folder / "random.ckpt",
    }
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["empty"].write_bytes(b"")
    files["text"].write_text("epoch=3 val/nll=0.12\n")
    torch.save(make_model().state_dict(), files["state-dict-only"])
    files["random-bytes"].write_bytes(bytes(range(256)) * 16)
    return files


def _fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


EXPECTED = {
    "truncated": "to be a readable PyTorch Lightning checkpoint",
    "empty": "to be a readable PyTorch Lightning checkpoint",
    "text": "to be a readable PyTorch Lightning checkpoint",
    "random-bytes": "to be a readable PyTorch Lightning checkpoint",
    "state-dict-only": "to be a Lightning checkpoint .* holding a dict with keys \\[backbone",
    "other-model": "to be a checkpoint of this",
}


def test_checkpoint_of_a_python_built_model_loads_with_weights_only(checkpoints):
    """A checkpoint of a model built in Python (optimizer=AdamW class) → loads with torch's weights_only=True default
    (the optimiser is stored as a class_path spec, not a pickled class)."""
    raw = torch.load(checkpoints["good"])  # weights_only=True since torch 2.6
    assert raw["hyper_parameters"]["optimizer"] == {"class_path": "torch.optim.adamw.AdamW", "init_args": {}}
    model = ImageClassifier.load_from_checkpoint(
        checkpoints["good"], backbone=SmallCNN(in_chans=1, widths=(8, 16)), head=UGMMHead
    )
    torch.testing.assert_close(model.state_dict(), raw["state_dict"])
    assert isinstance(model.configure_optimizers(), torch.optim.AdamW)


@pytest.mark.parametrize("kind", list(EXPECTED))
@pytest.mark.parametrize("route", ["trainer.test", "load_from_checkpoint"])
def test_bad_checkpoint_file_is_named_and_left_untouched(checkpoints, kind, route, make_model, make_trainer):
    """Truncated, empty, text, random-bytes, plain-state_dict or other-model checkpoint → ValueError naming the
    argument (`ckpt_path` / `checkpoint_path`) and the file; the file is byte-identical afterwards."""
    path = checkpoints[kind]
    before = _fingerprint(path)
    argument = "ckpt_path" if route == "trainer.test" else "checkpoint_path"
    with pytest.raises(ValueError, match=f"Expected `{argument}` {EXPECTED[kind]}") as err:
        if route == "trainer.test":
            trainer = make_trainer()
            trainer.test(make_model(), DigitsDataModule(ood_classes=(8, 9)), ckpt_path=path, verbose=False)
        else:
            ImageClassifier.load_from_checkpoint(path, backbone=SmallCNN(in_chans=1, widths=(8, 16)), head=UGMMHead)
    assert str(path) in str(err.value) and "left unchanged" in str(err.value)
    assert _fingerprint(path) == before


@pytest.mark.parametrize("route", ["trainer.test", "load_from_checkpoint"])
def test_missing_checkpoint_file(tmp_path, route, make_model, make_trainer):
    """A checkpoint path with no file → FileNotFoundError naming the argument and the path."""
    path = tmp_path / "best.ckpt"
    with pytest.raises(FileNotFoundError, match=r"Expected `\w+` to be an existing checkpoint file, got .*best\.ckpt"):
        if route == "trainer.test":
            make_trainer().test(make_model(), DigitsDataModule(ood_classes=(8, 9)), ckpt_path=path)
        else:
            ImageClassifier.load_from_checkpoint(path, backbone=SmallCNN(in_chans=1, widths=(8, 16)), head=UGMMHead)


@pytest.fixture(scope="module")
def cli_linear_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint written by `ugmm-vision fit` with configs/digits_linear.yaml (a linear head)."""
    folder, cwd = tmp_path_factory.mktemp("cli"), Path.cwd()
    os.chdir(folder)
    try:
        configs = ["--config", str(CONFIGS / "digits.yaml"), "--config", str(CONFIGS / "digits_linear.yaml")]
        limits = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1"]
        build_cli(["fit", *configs, *limits, "--trainer.enable_progress_bar=false"])
    finally:
        os.chdir(cwd)
    return folder / "outputs/digits_linear/checkpoints/best.ckpt"


def test_cli_evaluate_checkpoint_of_another_model(cli_linear_checkpoint, in_tmp):
    """`ugmm-vision evaluate --ckpt_path <a linear-head checkpoint>` with the uGMM config → ValueError naming
    `ckpt_path`, the file and the missing tensors; the file is untouched and no report is written.

    A checkpoint that stores its backbone and head specs rebuilds its own model whatever the config says; one
    without them (saved before specs were stored) takes the config's head, which does not fit."""
    checkpoint = torch.load(cli_linear_checkpoint, map_location="cpu", weights_only=True)
    for key in ("backbone", "head"):
        del checkpoint["hyper_parameters"][key]
    without_specs = in_tmp / "best.ckpt"
    torch.save(checkpoint, without_specs)
    before = _fingerprint(without_specs)
    args = ["evaluate", "--config", str(CONFIGS / "digits.yaml"), "--ckpt_path", str(without_specs)]
    match = r"Expected `ckpt_path` to be a checkpoint of this ImageClassifier, got .*best\.ckpt.*head\.layers\.0\.mu"
    with pytest.raises(ValueError, match=match):
        build_cli([*args, "--output_dir", "report", "--shift=false"])
    assert _fingerprint(without_specs) == before
    assert not list((in_tmp / "report").glob("*"))  # no report (evaluate checks the folder first, creating it)


def test_cli_test_truncated_checkpoint(checkpoints, in_tmp):
    """`ugmm-vision test --ckpt_path <truncated file>` → ValueError naming `ckpt_path` and the file."""
    path = checkpoints["truncated"]
    before = _fingerprint(path)
    try:
        with pytest.raises(ValueError, match=f"Expected `ckpt_path` {EXPECTED['truncated']}.*{path.name}"):
            build_cli(["test", "--config", str(CONFIGS / "digits.yaml"), "--ckpt_path", str(path)])
    finally:
        assert _fingerprint(path) == before
