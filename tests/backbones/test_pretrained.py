"""Backbone weights made here: saved as safetensors, loaded through timm's pretrained path; pretrain → transfer."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from ugmm_vision.backbones import TimmBackbone, create_backbone
from ugmm_vision.backbones.pretrained import backbone_state_dict, save_backbone_weights
from ugmm_vision.cli import build_cli

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
_spec = importlib.util.spec_from_file_location("idx_helpers", Path(__file__).parents[1] / "data" / "idx_helpers.py")
idx_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(idx_helpers)


def randomised(backbone):
    """Perturb every parameter and BatchNorm statistic, so that a load that silently skips a key is caught."""
    with torch.no_grad():
        for tensor in backbone.model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn_like(tensor).abs() * 0.1)
    return backbone


@pytest.mark.parametrize("model_name", ["resnet10t", "resnet18"])
def test_saved_weights_load_through_timms_pretrained_path(tmp_path, model_name):
    torch.manual_seed(0)
    trained = randomised(TimmBackbone(model_name, in_chans=1)).eval()
    path = save_backbone_weights(trained, tmp_path / "w.safetensors", metadata={"note": "test"})
    header = safetensors.safe_open(str(path), "pt").metadata()
    assert header["architecture"] == model_name and header["note"] == "test"
    loaded = create_backbone(f"timm/{model_name}", pretrained_file=path, in_chans=1).eval()
    expected, got = trained.model.state_dict(), loaded.model.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:  # the first conv is summed back from its 3-channel form: equal up to rounding
        torch.testing.assert_close(got[key], expected[key], rtol=1e-6, atol=1e-6)
    images = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(loaded(images), trained(images), rtol=1e-5, atol=1e-5)
    # The same file in timm's 3-channel form: grey images repeated over the channels give the same features.
    rgb = create_backbone(f"timm/{model_name}", pretrained_file=path, in_chans=3).eval()
    torch.testing.assert_close(rgb(images.expand(-1, 3, -1, -1)), trained(images), rtol=1e-4, atol=1e-5)


def test_state_dict_form_and_arguments(tmp_path):
    backbone = TimmBackbone("resnet10t", in_chans=1)
    state = backbone_state_dict(backbone)
    kernel = backbone.model.conv1[0].weight.detach()  # (24, 1, 3, 3)
    assert state["conv1.0.weight"].shape == (24, 3, 3, 3)
    torch.testing.assert_close(state["conv1.0.weight"][:, 1:2], kernel / 3)
    assert not any(key.startswith("fc.") for key in state)  # num_classes=0: no classifier
    with pytest.raises(ValueError, match=r"`path` to end in \.safetensors"):
        save_backbone_weights(backbone, tmp_path / "w.pth")
    with pytest.raises(TypeError, match="`backbone` to be a TimmBackbone"):
        backbone_state_dict(create_backbone("small_cnn"))
    with pytest.raises(ValueError, match="`in_chans` 1 or 3"):
        backbone_state_dict(TimmBackbone("resnet10t", in_chans=2))


@pytest.mark.slow
def test_pretrain_command_then_transfer_preset(tmp_path, monkeypatch):
    """``ugmm-vision pretrain`` on tiny Fashion-MNIST files, then the transfer preset fits from the weights file."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "fmnist"
    idx_helpers.write_dataset(data, np.random.default_rng(0), train_per_class=8, test_per_class=2)
    out = tmp_path / "weights" / "r10t.safetensors"
    tiny = ["--data.init_args.root", str(data), "--data.init_args.batch_size=8", "--trainer.limit_val_batches=1"]
    cli = build_cli(
        [
            "pretrain", "--config", str(CONFIGS / "pretrain_fashion_mnist.yaml"), *tiny, "--output", str(out),
            "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
        ]
    )  # fmt: skip
    assert cli.trainer.state.finished and out.is_file()
    assert cli.datamodule.num_classes == 5 and cli.model.num_classes == 5  # the source task: classes 0–4
    trained = cli.model.backbone.model.state_dict()
    loaded = create_backbone("timm/resnet10t", pretrained_file=out, in_chans=1).model.state_dict()
    for key in trained:
        torch.testing.assert_close(loaded[key], trained[key], rtol=1e-6, atol=1e-6)

    # The transfer preset from that file: the backbone starts from (and, frozen in epoch 0, keeps) the weights.
    cli = build_cli(
        [
            "fit", "--config", str(CONFIGS / "finetune_timm.yaml"), *tiny,
            f"--model.init_args.backbone.init_args.pretrained_file={out}", "--trainer.fast_dev_run=true",
        ]
    )  # fmt: skip
    assert cli.trainer.state.finished and "train/loss" in cli.trainer.logged_metrics
    assert type(cli.model.head).__name__ == "UGMMHead" and cli.model.num_classes == 5  # classes 5–9
    for name, param in cli.model.backbone.model.named_parameters():
        torch.testing.assert_close(param.detach(), trained[name], rtol=1e-6, atol=1e-6)


def test_pretrain_refuses_a_backbone_without_timm_weights_before_fitting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError, match=r"`model\.backbone` to be a TimmBackbone"):
        build_cli(["pretrain", "--config", str(CONFIGS / "digits.yaml"), "--output", "w.safetensors"])
    assert not (tmp_path / "outputs").exists()  # nothing ran
