"""Checkpoints that stand alone: ``ImageClassifier.load_from_checkpoint(path)`` rebuilds backbone and head."""

import copy
import functools
import threading

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ugmm_vision.backbones import SmallCNN, TimmBackbone
from ugmm_vision.heads import LinearHead, MLPHead, ParamMatchedMLPHead, UGMMHead
from ugmm_vision.models import ImageClassifier
from ugmm_vision.models.checkpoints import UntrustedClassPathError
from ugmm_vision.specs import module_spec

HEADS = {
    "ugmm": functools.partial(UGMMHead, hidden=[6], mixing_dropout=0.1, tied_means=True),
    "linear": LinearHead,
    "mlp": functools.partial(MLPHead, hidden=[12], dropout=0.2),
    "param_matched_mlp": functools.partial(ParamMatchedMLPHead, match_hidden=[6]),
}


def _fit_and_save(model: ImageClassifier, path, size: int = 8, channels: int = 1) -> None:
    """One optimiser step on random images, then a real Lightning checkpoint."""
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(8, channels, size, size, generator=g), torch.arange(8) % model.num_classes)
    trainer = L.Trainer(
        max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(model, DataLoader(data, batch_size=4))
    trainer.save_checkpoint(path)


def _assert_same_model(loaded: ImageClassifier, original: ImageClassifier, images: torch.Tensor) -> None:
    assert type(loaded.backbone) is type(original.backbone) and type(loaded.head) is type(original.head)
    want = original.state_dict()
    assert loaded.state_dict().keys() == want.keys()
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, want[name], rtol=0, atol=0, msg=name)
    loaded.eval(), original.eval()
    torch.testing.assert_close(loaded(images), original(images), rtol=0, atol=0)


@pytest.mark.parametrize("head", HEADS.values(), ids=HEADS.keys())
def test_each_head_type_loads_with_no_other_argument(tmp_path, head):
    torch.manual_seed(0)
    model = ImageClassifier(SmallCNN(in_chans=1, widths=(8, 16)), head, num_classes=4, head_lr=0.05)
    path = tmp_path / "model.ckpt"
    _fit_and_save(model, path)
    hparams = torch.load(path, map_location="cpu", weights_only=True)["hyper_parameters"]  # plain data only
    assert hparams["backbone"]["class_path"].endswith("SmallCNN")
    assert hparams["backbone"]["init_args"]["widths"] == [8, 16]
    loaded = ImageClassifier.load_from_checkpoint(path)
    _assert_same_model(loaded, model, torch.randn(3, 1, 8, 8))
    assert loaded.head_lr == 0.05
    for key, value in getattr(head, "keywords", {}).items():  # the head's own arguments came back too
        assert hparams["head"]["init_args"][key] == value


def test_timm_backbone_loads_with_no_other_argument(tmp_path):
    torch.manual_seed(0)
    backbone = TimmBackbone("test_resnet", in_chans=1, model_kwargs={"drop_rate": 0.1})
    model = ImageClassifier(backbone, UGMMHead, num_classes=3)
    path = tmp_path / "timm.ckpt"
    _fit_and_save(model, path, size=32)
    loaded = ImageClassifier.load_from_checkpoint(path)
    assert loaded.backbone.model_name == "test_resnet" and loaded.backbone.in_chans == 1
    assert loaded.backbone.model.drop_rate == 0.1
    _assert_same_model(loaded, model, torch.randn(2, 1, 32, 32))


def test_backbone_and_head_arguments_override_the_stored_specs(tmp_path):
    torch.manual_seed(0)
    model = ImageClassifier(SmallCNN(in_chans=1, widths=(8, 16)), UGMMHead, num_classes=4)
    path = tmp_path / "model.ckpt"
    _fit_and_save(model, path)
    loaded = ImageClassifier.load_from_checkpoint(path, head=functools.partial(UGMMHead, mixing_dropout=0.5))
    assert loaded.head.layers[0].mixing_dropout == 0.5  # the override was used, with the checkpoint's weights
    torch.testing.assert_close(loaded.head.layers[0].mu, model.head.layers[0].mu)
    with pytest.raises(ValueError, match="`checkpoint_path` to be a checkpoint of this model"):
        ImageClassifier.load_from_checkpoint(path, head=LinearHead)  # another head's tensors: a clear error


def test_a_head_without_recorded_arguments_is_asked_for(tmp_path):
    torch.manual_seed(0)
    model = ImageClassifier(SmallCNN(in_chans=1, widths=(8, 16)), LinearHead(16, 4))  # an instance: no spec
    path = tmp_path / "model.ckpt"
    _fit_and_save(model, path)
    assert "head" not in torch.load(path, map_location="cpu", weights_only=True)["hyper_parameters"]
    with pytest.raises(ValueError, match=r"hold the head spec.*pass head=\.\.\."):
        ImageClassifier.load_from_checkpoint(path)
    _assert_same_model(ImageClassifier.load_from_checkpoint(path, head=LinearHead), model, torch.randn(2, 1, 8, 8))


def test_a_stored_spec_outside_the_allow_list_is_refused(tmp_path):
    torch.manual_seed(0)
    model = ImageClassifier(SmallCNN(in_chans=1, widths=(8, 16)), LinearHead, num_classes=4)
    path = tmp_path / "model.ckpt"
    _fit_and_save(model, path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"]["backbone"]["init_args"]["act_layer"] = {"class_path": "subprocess.Popen"}
    torch.save(checkpoint, path)
    with pytest.raises(UntrustedClassPathError, match=r"subprocess\.Popen"):
        ImageClassifier.load_from_checkpoint(path)


def test_parameter_groups_are_named_and_follow_timms_weight_decay_rule():
    model = ImageClassifier(
        SmallCNN(in_chans=1, widths=(8, 16)), functools.partial(MLPHead, hidden=[12]), num_classes=4, backbone_lr=0.01
    )
    groups = {g["name"]: g for g in model.configure_optimizers().param_groups}
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for name in ("backbone", "head") for p in groups[name]["params"]}
    assert decayed == {n for n, p in model.named_parameters() if p.ndim > 1}  # conv and linear weights only
    assert groups["backbone_no_decay"]["weight_decay"] == 0.0 and groups["head_no_decay"]["weight_decay"] == 0.0
    assert groups["backbone"]["weight_decay"] == torch.optim.AdamW([torch.zeros(1)]).defaults["weight_decay"]
    assert groups["backbone"]["lr"] == groups["backbone_no_decay"]["lr"] == 0.01
    ugmm = ImageClassifier(SmallCNN(in_chans=1, widths=(8, 16)), UGMMHead, num_classes=4)
    ugmm_groups = {g["name"]: g for g in ugmm.configure_optimizers().param_groups}
    assert "head" not in ugmm_groups  # mu, log_sigma and mix_logits (2-D) take no weight decay either
    assert len(ugmm_groups["head_no_decay"]["params"]) == len(list(ugmm.head.parameters()))
    plain = ImageClassifier(SmallCNN(in_chans=1, widths=(8, 16)), UGMMHead, num_classes=4, filter_bias_and_bn=False)
    assert [g["name"] for g in plain.configure_optimizers().param_groups] == ["backbone", "head"]


def _call(lock, cls, channels):
    return cls(channels)


def test_a_backbone_with_arguments_that_are_not_plain_data_has_no_spec_and_still_copies():
    # jsonargparse passes callables as partials holding a lock: neither a checkpoint nor deepcopy can take those.
    norm_layer = functools.partial(_call, threading.RLock(), torch.nn.BatchNorm2d)
    backbone = SmallCNN(in_chans=1, widths=(8, 16), norm_layer=norm_layer)
    assert module_spec(backbone) is None and dict(backbone.hparams) == {}
    copied = copy.deepcopy(backbone)
    torch.testing.assert_close(copied.eval()(torch.ones(1, 1, 8, 8)), backbone.eval()(torch.ones(1, 1, 8, 8)))
    plain = SmallCNN(in_chans=1, widths=(8, 16), norm_layer=torch.nn.BatchNorm2d)
    assert module_spec(plain)["init_args"]["norm_layer"]["class_path"] == "torch.nn.modules.batchnorm.BatchNorm2d"
