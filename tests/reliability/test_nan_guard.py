"""Diverging training: ``NaNGuard`` stops it with a clear message, and no checkpoint of NaN/Inf weights is saved."""

import functools
import math
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from ugmm_vision.callbacks import NaNGuard, NonFiniteTrainingError
from ugmm_vision.data import DigitsDataModule

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _checkpoint(folder):
    return ModelCheckpoint(
        dirpath=folder, filename="best", monitor="val/nll", mode="min", save_last=True, enable_version_counter=False
    )


def _all_finite(path: Path) -> bool:
    state = torch.load(path, weights_only=False)["state_dict"]
    return all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def _best_score(path: Path) -> float:
    callbacks = torch.load(path, weights_only=False)["callbacks"]
    return float(next(v["best_model_score"] for k, v in callbacks.items() if k.startswith("ModelCheckpoint")))


class HugeLearningRateFrom(Callback):
    """Multiplies every learning rate by ``factor`` at the start of epoch ``epoch``."""

    def __init__(self, epoch: int, factor: float) -> None:
        self.epoch, self.factor = epoch, factor

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            for group in trainer.optimizers[0].param_groups:
                group["lr"] *= self.factor


def _digits():
    return DigitsDataModule(ood_classes=(8, 9), batch_size=128)


def test_huge_learning_rate_after_a_good_epoch_keeps_the_good_best(make_model, make_trainer, tmp_path):
    """lr × 1e6 after one good epoch → NonFiniteTrainingError naming what diverged; best.ckpt stays epoch 0's,
    finite, with a finite score, and no checkpoint of the diverged weights exists."""
    L.seed_everything(0, verbose=False)
    model = make_model(optimizer=functools.partial(torch.optim.AdamW, lr=3e-3))
    trainer = make_trainer(
        max_epochs=6,
        limit_train_batches=5,
        limit_val_batches=2,
        enable_checkpointing=True,
        callbacks=[NaNGuard(), _checkpoint(tmp_path), HugeLearningRateFrom(epoch=1, factor=1e6)],
    )
    match = r"NaNGuard stopped training at epoch \d, step \d+: .*(NaN|nan)"
    with pytest.raises(NonFiniteTrainingError, match=match) as err:
        trainer.fit(model, _digits())
    stopped_at = int(str(err.value).split("epoch ")[1].split(",")[0])
    assert stopped_at >= 1 and "Lower the learning rate" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.ckpt", "last.ckpt"]
    assert torch.load(tmp_path / "best.ckpt", weights_only=False)["epoch"] == 0  # the only good epoch
    for name in ("best.ckpt", "last.ckpt"):
        assert torch.load(tmp_path / name, weights_only=False)["epoch"] < stopped_at
        assert _all_finite(tmp_path / name)
    assert math.isfinite(_best_score(tmp_path / "best.ckpt"))


@pytest.mark.parametrize("optimizer", ["SGD", "AdamW"])
def test_huge_learning_rate_from_the_start_never_saves_nonfinite_weights(make_model, make_trainer, tmp_path, optimizer):
    """lr = 1e6 (SGD) or 1e3 (AdamW) from step 0 → training either stays finite or stops with NonFiniteTrainingError;
    every checkpoint written holds finite weights and a finite best score."""
    L.seed_everything(0, verbose=False)
    lr = {"SGD": 1e6, "AdamW": 1e3}[optimizer]
    model = make_model(optimizer=functools.partial(getattr(torch.optim, optimizer), lr=lr))
    trainer = make_trainer(max_epochs=3, enable_checkpointing=True, callbacks=[NaNGuard(), _checkpoint(tmp_path)])
    try:
        trainer.fit(model, _digits())
    except NonFiniteTrainingError as err:
        assert "NaNGuard stopped training" in str(err) and "Lower the learning rate" in str(err)
    else:
        assert NaNGuard.nonfinite_tensors(model) == []
    for path in tmp_path.glob("*.ckpt"):
        assert _all_finite(path), path
        assert math.isfinite(_best_score(path)), path


class _Diverging(Callback):
    """Poisons one head parameter with NaN after the first optimiser step."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == 0:
            with torch.no_grad():
                next(pl_module.head.parameters()).view(-1)[0] = float("nan")


def test_nonfinite_parameter_stops_before_any_checkpoint(make_model, make_trainer, tmp_path):
    """A parameter turning NaN → NonFiniteTrainingError naming the tensor; no checkpoint is written at all."""
    trainer = make_trainer(
        max_epochs=2, enable_checkpointing=True, callbacks=[_Diverging(), NaNGuard(), _checkpoint(tmp_path)]
    )
    with pytest.raises(NonFiniteTrainingError, match=r"step 1: 1 parameter or buffer tensor\(s\) hold NaN or Inf"):
        trainer.fit(make_model(), _digits())
    assert list(tmp_path.iterdir()) == []


class _NaNLoss(L.LightningModule):
    def __init__(self, nan_val: bool = False) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.nan_val = nan_val

    def training_step(self, batch, batch_idx):
        return self.weight.sum() * (float("nan") if not self.nan_val else 1.0)

    def validation_step(self, batch, batch_idx):
        self.log("val/nll", torch.tensor(float("nan") if self.nan_val else 1.0))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _loader():
    return torch.utils.data.DataLoader(torch.zeros(4, 1), batch_size=2)


def test_nan_loss_stops_with_the_value(make_trainer, tmp_path):
    """A NaN training loss → NonFiniteTrainingError saying "the training loss is nan" at step 1."""
    trainer = make_trainer(max_epochs=1, enable_checkpointing=True, callbacks=[NaNGuard(), _checkpoint(tmp_path)])
    with pytest.raises(NonFiniteTrainingError, match="epoch 0, step 1: the training loss is nan"):
        trainer.fit(_NaNLoss(), _loader(), _loader())
    assert list(tmp_path.iterdir()) == []


def test_nan_monitored_metric_is_never_saved_as_best(make_trainer, tmp_path):
    """val/nll = NaN with finite weights → NonFiniteTrainingError naming 'val/nll'; ModelCheckpoint saves nothing
    (without the guard it would save best.ckpt with that NaN score: the first checkpoint is always kept)."""
    trainer = make_trainer(max_epochs=1, enable_checkpointing=True, callbacks=[NaNGuard(), _checkpoint(tmp_path)])
    with pytest.raises(NonFiniteTrainingError, match="the monitored metric 'val/nll' is nan after validation"):
        trainer.fit(_NaNLoss(nan_val=True), _loader(), _loader())
    assert list(tmp_path.iterdir()) == []
    unguarded = make_trainer(max_epochs=1, enable_checkpointing=True, callbacks=[_checkpoint(tmp_path)])
    unguarded.fit(_NaNLoss(nan_val=True), _loader(), _loader())
    assert (tmp_path / "best.ckpt").is_file()  # the behaviour NaNGuard prevents


def test_configs_with_callbacks_include_the_guard():
    """Every shipped config that lists trainer callbacks lists NaNGuard (a later --config replaces the whole list)."""
    with_callbacks = {}
    for path in sorted(CONFIGS.glob("*.yaml")):
        callbacks = (yaml.safe_load(path.read_text()).get("trainer") or {}).get("callbacks")
        if callbacks and any("ModelCheckpoint" in c.get("class_path", "") for c in callbacks):
            with_callbacks[path.name] = [c["class_path"] for c in callbacks]
    assert "digits.yaml" in with_callbacks and len(with_callbacks) >= 9
    for name, paths in with_callbacks.items():
        assert "ugmm_vision.callbacks.NaNGuard" in paths, name
