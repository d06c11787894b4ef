import functools

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from ugmm_vision.backbones import SmallCNN
from ugmm_vision.data import DigitsDataModule
from ugmm_vision.heads import LinearHead, UGMMHead
from ugmm_vision.models import ImageClassifier
from ugmm_vision.trainers import quiet_trainer


def make_trainer(**kwargs):
    return quiet_trainer(**{"deterministic": True, **kwargs})


def make_model(**kwargs):
    defaults = dict(backbone=SmallCNN(in_chans=1, widths=(8, 16)), head=UGMMHead, num_classes=8)
    return ImageClassifier(**{**defaults, **kwargs})


@pytest.fixture(scope="module")
def trained():
    L.seed_everything(0, verbose=False)
    data = DigitsDataModule(ood_classes=(8, 9), batch_size=128)
    model = make_model(head_lr=0.03)
    trainer = make_trainer(max_epochs=3)
    trainer.fit(model, data)
    fit_metrics = dict(trainer.logged_metrics)
    results = trainer.test(model, data, verbose=False)[0]
    return model, data, fit_metrics, results


def test_fit_and_test_log_every_metric(trained):
    _, _, fit_metrics, results = trained
    logged = set(fit_metrics)
    assert {
        "train/loss",
        "train/acc",
        "train/nll",
        "train/cal/ece",
        "val/acc",
        "val/nll",
        "val/cal/ece",
    } <= logged
    assert set(results) == {"test/acc", "test/nll", "test/cal/ece", "test/ood/auroc_msp"}
    assert all(np.isfinite(v) for v in results.values())


def test_test_metrics_match_independent_computation(trained):
    model, data, _, results = trained
    model.eval()
    with torch.no_grad():
        logits = model(data.test_set.tensors[0]).double()
        ood_logits = model(data.ood_set.tensors[0]).double()
    targets = data.test_set.tensors[1].numpy()
    probs = logits.softmax(-1).numpy()
    assert results["test/acc"] == pytest.approx(accuracy_score(targets, probs.argmax(1)), abs=1e-6)
    assert results["test/nll"] == pytest.approx(log_loss(targets, probs, labels=range(8)), rel=1e-4)
    confidence, correct = probs.max(1), probs.argmax(1) == targets
    bins = np.minimum((confidence * 15).astype(int), 14)  # 15 equal-width bins; top-label ECE
    ece = sum(
        abs(confidence[bins == b].mean() - correct[bins == b].mean()) * (bins == b).mean()
        for b in range(15)
        if (bins == b).any()
    )
    assert results["test/cal/ece"] == pytest.approx(ece, abs=1e-4)
    msp = np.concatenate([probs.max(1), ood_logits.softmax(-1).numpy().max(1)])
    is_id = np.concatenate([np.ones(len(probs)), np.zeros(len(ood_logits))])
    assert results["test/ood/auroc_msp"] == pytest.approx(roc_auc_score(is_id, msp), abs=1e-4)


def test_learns_above_chance(trained):
    assert trained[3]["test/acc"] > 0.5


def test_frozen_backbone_for_first_epochs():
    L.seed_everything(0, verbose=False)
    data = DigitsDataModule(batch_size=256)
    model = make_model(num_classes=10, freeze_backbone_epochs=1)
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    make_trainer(max_epochs=1, limit_val_batches=1).fit(model, data)
    # Weights and BatchNorm running statistics untouched during the linear probe; the head learned.
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, backbone_before[key]), key
    assert any(not torch.equal(v, head_before[k]) for k, v in model.head.state_dict().items())
    make_trainer(max_epochs=2, limit_val_batches=1).fit(model, data, ckpt_path=None)
    assert model.backbone.training or not model.training
    assert not model.backbone_frozen
    changed = [k for k, v in model.backbone.state_dict().items() if not torch.equal(v, backbone_before[k])]
    assert changed  # fine-tuning after the probe


def test_frozen_backbone_stays_in_eval_mode_after_train_call():
    model = make_model(freeze_backbone_epochs=2)
    model.freezer.set_frozen(True)
    model.train()
    assert model.head.training and not model.backbone.training
    assert not any(p.requires_grad for p in model.backbone.parameters())


def test_separate_learning_rates():
    model = make_model(optimizer=functools.partial(torch.optim.SGD, lr=0.1), backbone_lr=0.001)
    optimizer = model.configure_optimizers()
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}  # named groups, with and without weight decay
    assert lrs == {"backbone_no_decay": 0.001, "backbone": 0.001, "head_no_decay": 0.1}  # a uGMM head: no decay
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    model = make_model(lr_scheduler=functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1), head_lr=0.5)
    config = model.configure_optimizers()
    assert {g["name"]: g["lr"] for g in config["optimizer"].param_groups}["head_no_decay"] == 0.5
    assert isinstance(config["lr_scheduler"], torch.optim.lr_scheduler.StepLR)


def test_head_module_or_factory():
    backbone = SmallCNN(in_chans=1, widths=(8, 16))
    model = ImageClassifier(backbone, LinearHead(16, 4))
    assert model.num_classes == 4
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 4)
    loss = F.cross_entropy(model(torch.randn(3, 1, 8, 8)), torch.tensor([0, 1, 3]))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"head": UGMMHead(32, 8)}, "head's `in_features` to equal the backbone's num_features=16"),
        ({"head": UGMMHead(16, 5)}, "head's `num_classes` to equal num_classes=8"),
        ({"num_classes": None}, "`num_classes` when `head` is a factory"),
        ({"num_classes": 1}, "`num_classes` to be an integer ≥ 2"),
        ({"freeze_backbone_epochs": -1}, "`freeze_backbone_epochs` to be an integer ≥ 0"),
        ({"backbone": torch.nn.Conv2d(1, 3, 3)}, "`backbone` to expose an integer `num_features`"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)
