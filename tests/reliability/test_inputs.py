"""Bad tensors at the model boundary: every Lightning step of ``ImageClassifier`` checks its batch first.

Wrong rank, channels, size or dtype are always a ``ValueError`` naming ``images``; NaN/Inf values are too, except
in training with ``bad_batch="skip"``, where the batch is skipped with a warning that counts the skips.
"""

import warnings

import pytest
import torch

from ugmm_vision.backbones import FlattenBackbone
from ugmm_vision.backbones.identity import IdentityBackbone
from ugmm_vision.heads import LinearHead
from ugmm_vision.models.inputs import count_nonfinite_samples

NAN, INF = float("nan"), float("inf")


def _poisoned(value: float, n: int = 16, bad: tuple[int, ...] = (5,)) -> torch.Tensor:
    images = torch.randn(n, 1, 8, 8)
    for i in bad:
        images[i, 0, 3, 3] = value
    return images


def run_stage(stage: str, trainer, model, loader) -> None:
    """Run ``model`` on ``loader`` in one of the four Lightning stages."""
    run = {
        "fit": lambda: trainer.fit(model, loader),
        "validate": lambda: trainer.validate(model, loader, verbose=False),
        "test": lambda: trainer.test(model, loader, verbose=False),
        "predict": lambda: trainer.predict(model, loader),
    }[stage]
    run()


@pytest.mark.parametrize(
    ("images", "match"),
    [
        pytest.param(torch.zeros(4, 8, 8), r"`images` of shape \(B, 1, H, W\), got shape \(4, 8, 8\)", id="rank-3"),
        pytest.param(torch.zeros(4, 1, 1, 8, 8), r"`images` of shape \(B, 1, H, W\)", id="rank-5"),
        pytest.param(torch.zeros(4, 3, 8, 8), r"`images` with 1 channel\(s\)", id="3-channels"),
        pytest.param(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), "`images` to be a floating-point tensor", id="uint8"),
        pytest.param(torch.zeros(4, 1, 8, 8, dtype=torch.int64), "got dtype torch.int64", id="int64"),
        pytest.param(torch.zeros(4, 1, 1, 1), "`images` at least 2×2 pixels", id="1x1-pixels"),
    ],
)
@pytest.mark.parametrize("stage", ["fit", "validate", "test", "predict"])
def test_malformed_batch_in_every_stage(make_model, make_trainer, make_loader, images, match, stage):
    """Wrong rank, channel count, size or an integer dtype → ValueError naming `images`, in every stage."""
    model, trainer, loader = make_model(bad_batch="skip"), make_trainer(max_epochs=1), make_loader(images)
    with pytest.raises(ValueError, match=match):  # bad_batch="skip" never skips a malformed batch
        run_stage(stage, trainer, model, loader)


@pytest.mark.parametrize("value", [NAN, INF, -INF], ids=["nan", "+inf", "-inf"])
@pytest.mark.parametrize("stage", ["fit", "validate", "test", "predict"])
def test_nonfinite_values_raise_by_default(make_model, make_trainer, make_loader, value, stage):
    """NaN or ±Inf pixels (bad_batch="raise", the default) → ValueError naming `images` with the count of bad images."""
    model, trainer = make_model(), make_trainer(max_epochs=1)
    loader = make_loader(_poisoned(value, bad=(1, 2)))
    with pytest.raises(ValueError, match=r"`images` with finite values, got 2 of 4 images of this \w+ batch"):
        run_stage(stage, trainer, model, loader)


def test_nonfinite_training_batches_skipped_with_a_count(make_model, make_trainer, make_loader):
    """NaN/Inf pixels with bad_batch="skip" → the training batch is skipped, a warning counts the skips."""
    torch.manual_seed(0)
    model = make_model(bad_batch="skip")
    images = _poisoned(NAN, n=24, bad=(0, 13))  # batches 0 and 3 of six
    images[17, 0, 0, 0] = INF  # batch 4
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = make_trainer(max_epochs=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, make_loader(images))
    skips = [str(w.message) for w in caught if "Skipped a training batch" in str(w.message)]
    assert [s.split("; ")[-1] for s in skips] == [f"{i} batch(es) skipped so far" for i in (1, 2, 3)]
    assert "1 of 4 images of this training batch hold NaN or Inf" in skips[0]
    assert model.skipped_batches == 3  # the three good batches were trained on: weights moved, all finite
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_skip_mode_still_raises_in_evaluation(make_model, make_trainer, make_loader):
    """NaN pixels in a validation batch with bad_batch="skip" → ValueError: a report must cover its whole set."""
    model, trainer = make_model(bad_batch="skip"), make_trainer()
    with pytest.raises(ValueError, match="`images` with finite values, got 1 of 4 images of this validation batch"):
        trainer.validate(model, make_loader(_poisoned(NAN)), verbose=False)


def test_declared_image_size_is_checked(make_model):
    """A backbone declaring image_size=8 (FlattenBackbone) given 10×10 images → ValueError naming `images`."""
    model = make_model(backbone=FlattenBackbone(in_chans=1, image_size=8))
    with pytest.raises(ValueError, match="`images` of 8×8 pixels as the backbone's image_size=8, got 10×10"):
        model.check_batch(torch.zeros(2, 1, 10, 10), "training")


def test_feature_backbone_gets_dtype_and_finiteness_checks_only(make_model):
    """Cached features (a backbone declaring no in_chans): rank-1 input or NaN → ValueError naming `images`."""
    model = make_model(backbone=IdentityBackbone(6), head=LinearHead(6, 3), num_classes=3)
    assert model.check_batch(torch.zeros(5, 6), "training")
    with pytest.raises(ValueError, match=r"`images` batched as \(B, ...\)"):
        model.check_batch(torch.zeros(6), "training")
    with pytest.raises(ValueError, match="`images` with finite values"):
        model.check_batch(torch.tensor([[0.0] * 5 + [NAN]]), "test")


def test_finiteness_check_costs_one_reduction_when_clean():
    """A clean batch is checked with one isfinite pass; the per-image count runs only when something is off."""
    assert count_nonfinite_samples(torch.randn(64, 3, 8, 8)) == 0
    images = torch.randn(64, 3, 8, 8)
    images[[3, 3, 40], [0, 1, 2], 0, 0] = torch.tensor([NAN, INF, -INF])
    assert count_nonfinite_samples(images) == 2
