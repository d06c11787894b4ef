"""``FlattenBackbone``: raw pixels as features."""

import pytest
import torch

from ugmm_vision.backbones import FlattenBackbone
from ugmm_vision.heads import UGMMHead
from ugmm_vision.models import ImageClassifier


@pytest.mark.parametrize(("in_chans", "image_size"), [(1, 8), (1, 28), (3, 32)])
def test_flatten_keeps_every_pixel_in_order(in_chans, image_size):
    backbone = FlattenBackbone(in_chans, image_size)
    images = torch.randn(2, in_chans, image_size, image_size)
    out = backbone(images)
    assert out.shape == (2, backbone.num_features) == (2, in_chans * image_size**2)
    torch.testing.assert_close(out, images.reshape(2, -1))
    assert not list(backbone.parameters())


def test_classifier_over_flattened_pixels_trains_its_head():
    model = ImageClassifier(FlattenBackbone(1, 8), UGMMHead(64, 10, hidden=(16,), norm_layer=None))
    images, targets = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    torch.nn.functional.cross_entropy(model(images), targets).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.head.parameters())
    model.configure_optimizers()  # the parameter-free backbone's empty group is accepted


@pytest.mark.parametrize(
    ("kwargs", "images", "match"),
    [
        ({"in_chans": 0}, None, "`in_chans`"),
        ({"image_size": 2.5}, None, "`image_size`"),
        ({"in_chans": 1, "image_size": 8}, torch.zeros(2, 1, 8, 9), r"`images` of shape \(B, 1, 8, 8\)"),
        ({"in_chans": 3, "image_size": 8}, torch.zeros(2, 1, 8, 8), "`images`"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, images, match):
    with pytest.raises(ValueError, match=match):
        FlattenBackbone(**kwargs)(images)
