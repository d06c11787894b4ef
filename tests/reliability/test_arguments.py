"""Bad arguments: each is refused up front with an error that names the argument and what was expected.

Checks that already have tests elsewhere (sizes ≤ 0, dropout outside [0, 1), unknown timm names, the head's
``in_features`` against the backbone, unknown config keys) are listed in docs/reliability.md from those tests; the
ones here fill the gaps.
"""

import math

import pytest
import torch

from ugmm_vision.backbones import SmallCNN, TimmBackbone
from ugmm_vision.callbacks import NaNGuard
from ugmm_vision.data import DigitsDataModule, ImageFolderDataModule
from ugmm_vision.functional import clamp_log_sigma
from ugmm_vision.heads import LinearHead, UGMMHead
from ugmm_vision.layers import UGMMLayer

FLOOR_MESSAGE = "`sigma_floor` to be a finite number ≥ 0"


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        pytest.param(lambda: UGMMLayer(3, 2, sigma_floor=-1e-3), FLOOR_MESSAGE, id="negative"),
        pytest.param(lambda: UGMMLayer(3, 2, sigma_floor=math.inf), FLOOR_MESSAGE, id="inf"),
        pytest.param(lambda: UGMMLayer(3, 2, sigma_floor=math.nan), FLOOR_MESSAGE, id="nan"),
        pytest.param(lambda: UGMMHead(4, 3, sigma_floor=-1.0), "`sigma_floor`", id="via-head"),
        pytest.param(lambda: clamp_log_sigma(torch.zeros(2), -math.inf), "`min_log_sigma` to be finite", id="clamp"),
    ],
)
def test_sigma_floor_out_of_range(factory, match):
    """σ floor negative, infinite or NaN → ValueError naming `sigma_floor` (or `min_log_sigma`)."""
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize("mixing_dropout", [1.5, [0.2, 1.0], [-0.1, 0.0]])
def test_per_layer_mixing_dropout_out_of_range(mixing_dropout):
    """A per-layer `mixing_dropout` value outside [0, 1) → ValueError naming `mixing_dropout` and the value."""
    with pytest.raises(ValueError, match=r"Expected `mixing_dropout` in \[0, 1\), got"):
        UGMMHead(4, 3, hidden=(5,), mixing_dropout=mixing_dropout)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"calibration_bins": 0}, "`calibration_bins` to be a positive integer", id="calibration_bins=0"),
        pytest.param({"head_lr": -0.1}, "`head_lr` to be a positive finite learning rate", id="head_lr<0"),
        pytest.param({"head_lr": 0.0}, "`head_lr` to be a positive finite learning rate", id="head_lr=0"),
        pytest.param({"backbone_lr": math.inf}, "`backbone_lr` to be a positive finite", id="backbone_lr=inf"),
        pytest.param({"bad_batch": "ignore"}, "`bad_batch` to be 'raise' or 'skip'", id="bad_batch=ignore"),
    ],
)
def test_classifier_arguments_out_of_range(make_model, kwargs, match):
    """ImageClassifier: non-positive bins or learning rates, unknown `bad_batch` → ValueError naming the argument."""
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_nan_guard_check_interval_not_positive():
    """NaNGuard(check_every_n_steps=0) → ValueError naming `check_every_n_steps`."""
    with pytest.raises(ValueError, match="`check_every_n_steps` to be a positive integer, got 0"):
        NaNGuard(check_every_n_steps=0)


def test_bad_images_mode_unknown(tmp_path):
    """ImageFolderDataModule(bad_images="ignore") → ValueError naming `bad_images`."""
    with pytest.raises(ValueError, match="`bad_images` to be 'raise', 'skip' or 'unchecked'"):
        ImageFolderDataModule(tmp_path, bad_images="ignore")


@pytest.mark.parametrize("stage", ["fit", "test"])
def test_head_classes_differ_from_the_data(make_model, make_trainer, stage):
    """A head for 10 classes with digits of 8 classes → ValueError naming `num_classes` at setup, before a step."""
    model = make_model(num_classes=10)
    data = DigitsDataModule(ood_classes=(8, 9), batch_size=256)
    trainer = make_trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1)
    with pytest.raises(ValueError, match=r"`num_classes`=10 .* got 8 from DigitsDataModule.num_classes"):
        trainer.fit(model, data) if stage == "fit" else trainer.test(model, data, verbose=False)
    assert trainer.global_step == 0


def test_explicit_head_classes_differ_from_the_data(make_model, make_trainer):
    """A ready-made head with 5 classes given digits of 10 classes → ValueError naming `num_classes`."""
    model = make_model(head=LinearHead(16, 5), num_classes=None)
    with pytest.raises(ValueError, match=r"`num_classes`=5 .* got 10"):
        make_trainer(max_epochs=1, limit_train_batches=1).fit(model, DigitsDataModule(batch_size=256))


def test_small_cnn_in_chans_mismatch_is_caught_before_the_backbone(make_model):
    """Backbone declaring in_chans=1 fed 3-channel images → the model's check names `images` (not a conv error)."""
    model = make_model()
    with pytest.raises(ValueError, match=r"`images` with 1 channel\(s\) as the backbone's in_chans=1"):
        model.check_batch(torch.zeros(2, 3, 8, 8), "training")


def test_vit_fixed_image_size_is_declared_and_checked(make_model):
    """A ViT built for 32×32 given 64×64 images → ValueError naming `images` and the backbone's image_size."""
    backbone = TimmBackbone("vit_tiny_patch16_224", in_chans=3, model_kwargs={"img_size": 32})
    assert backbone.image_size == (32, 32)
    assert TimmBackbone("resnet18").image_size is None  # CNNs take any size
    model = make_model(backbone=backbone)
    match = r"`images` of 32×32 pixels as the backbone's image_size=\(32, 32\), got 64×64"
    with pytest.raises(ValueError, match=match):
        model.check_batch(torch.zeros(1, 3, 64, 64), "test")
    assert model.check_batch(torch.zeros(1, 3, 32, 32), "test")


def test_small_cnn_rejects_tiny_images_at_the_model_boundary(make_model):
    """Images smaller than the backbone's min_size → ValueError naming `images` and the minimum."""
    model = make_model(backbone=SmallCNN(in_chans=1, widths=(8, 16, 32)))
    with pytest.raises(ValueError, match="`images` at least 4×4 pixels"):
        model.check_batch(torch.zeros(2, 1, 3, 3), "validation")
