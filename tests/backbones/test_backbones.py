import pytest
import timm
import torch

from ugmm_vision.backbones import SmallCNN, TimmBackbone, create_backbone
from ugmm_vision.heads import UGMMHead

TIMM_CASES = [
    # (name, model_kwargs, image size); MobileNetV3's head_hidden_size (1024) differs from num_features (288).
    ("resnet18", {}, 32),
    ("mobilenetv3_small_050", {}, 32),
    ("efficientnet_b0", {}, 32),
    ("vit_tiny_patch16_224", {"img_size": 32}, 32),
]


@pytest.mark.parametrize(("name", "model_kwargs", "size"), TIMM_CASES)
def test_ugmm_head_trains_on_timm_backbone(name, model_kwargs, size):
    torch.manual_seed(0)
    backbone = create_backbone(f"timm/{name}", model_kwargs=model_kwargs)
    reference = timm.create_model(name, num_classes=0, **model_kwargs)
    assert backbone.num_features == reference.head_hidden_size
    head = UGMMHead(backbone.num_features, 4)
    params = list(backbone.parameters()) + list(head.parameters())
    optimizer = torch.optim.SGD(params, lr=0.01)
    images, targets = torch.randn(2, 3, size, size), torch.tensor([0, 3])
    features = backbone(images)
    assert features.shape == (2, backbone.num_features)
    loss = torch.nn.functional.cross_entropy(head(features), targets)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in head.parameters())
    assert torch.isfinite(loss)
    before = head.layers[0].mu.detach().clone()
    optimizer.step()
    assert not torch.equal(before, head.layers[0].mu)


def test_mobilenet_feature_width_is_head_hidden_size():
    backbone = TimmBackbone("mobilenetv3_small_050")
    assert backbone.num_features == 1024 != backbone.model.num_features


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_weights_file_loads_through_pretrained_path(tmp_path, suffix, assert_weights_loaded):
    torch.manual_seed(0)
    source = timm.create_model("resnet18", num_classes=7)
    path = tmp_path / f"weights{suffix}"
    if suffix == ".pth":
        torch.save(source.state_dict(), path)
    else:
        from safetensors.torch import save_file

        save_file(source.state_dict(), str(path))
    assert_weights_loaded(TimmBackbone("resnet18", pretrained_file=path), source)


def test_local_weights_adapted_to_one_channel(tmp_path):
    source = timm.create_model("resnet18", num_classes=0)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    backbone = TimmBackbone("resnet18", pretrained_file=path, in_chans=1)
    # timm sums the RGB filters when adapting pretrained weights to one input channel.
    torch.testing.assert_close(backbone.model.conv1.weight, source.conv1.weight.sum(dim=1, keepdim=True))


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="`pretrained_file`"):
        TimmBackbone("resnet18", pretrained_file=tmp_path / "nope.pth")


def test_unknown_timm_name_suggests_close_names():
    with pytest.raises(ValueError, match=r"did you mean.*'resnet18'"):
        create_backbone("timm/resnet81")


def test_data_config_from_timm():
    config = TimmBackbone("resnet18").data_config
    assert config["input_size"] == (3, 224, 224) and len(config["mean"]) == 3


@pytest.mark.parametrize(("size", "channels", "feature_map"), [(8, 1, 2), (28, 1, 7), (32, 3, 8)])
def test_small_cnn_sizes(size, channels, feature_map):
    cnn = create_backbone("small_cnn", in_chans=channels)
    images = torch.randn(2, channels, size, size)
    assert cnn.forward_features(images).shape == (2, 128, feature_map, feature_map)
    assert cnn(images).shape == (2, cnn.num_features)


@pytest.mark.parametrize(
    ("factory", "error", "match"),
    [
        (lambda: create_backbone("resnet18"), ValueError, "`name` to be 'timm/<model_name>'"),
        (lambda: create_backbone("small_cnn", pretrained=True), ValueError, "`pretrained=False`"),
        (lambda: SmallCNN(in_chans=0), ValueError, "`in_chans`"),
        (lambda: SmallCNN(widths=()), ValueError, "`widths`"),
        (
            lambda: SmallCNN(in_chans=1)(torch.randn(1, 3, 8, 8)),
            ValueError,
            r"`images` of shape \(B, 1, H, W\)",
        ),
        (lambda: SmallCNN(in_chans=1)(torch.randn(1, 1, 2, 2)), ValueError, "at least 4×4"),
    ],
)
def test_bad_arguments(factory, error, match):
    with pytest.raises(error, match=match):
        factory()
