"""timm names as timm accepts them: ``hf-hub:`` repositories and ``local-dir:`` folders, resolved offline."""

import json

import huggingface_hub.constants
import pytest
import timm
import torch
from huggingface_hub.errors import LocalEntryNotFoundError
from safetensors.torch import save_file

from ugmm_vision.backbones import TimmBackbone, check_timm_model_name, create_backbone

REPO = "timm/resnet18.a1_in1k"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
MEAN, STD = [0.25, 0.5, 0.75], [0.1, 0.2, 0.3]  # not ImageNet's: shows that the repository's config was read


def _write_model_folder(folder, source):
    """``config.json`` and ``model.safetensors`` as timm's ``push_to_hf_hub`` lays them out."""
    folder.mkdir(parents=True)
    config = {
        "architecture": "resnet18",
        "num_classes": 7,
        "num_features": 512,
        "pretrained_cfg": {
            "tag": "a1_in1k",
            "input_size": [3, 160, 160],
            "fixed_input_size": False,
            "interpolation": "bicubic",
            "crop_pct": 0.95,
            "mean": MEAN,
            "std": STD,
            "num_classes": 7,
            "first_conv": "conv1",
            "classifier": "fc",
        },
    }
    (folder / "config.json").write_text(json.dumps(config))
    save_file(source.state_dict(), str(folder / "model.safetensors"))


def _write_hub_cache(cache, source):
    """A Hugging Face Hub cache as ``hf_hub_download`` leaves it: refs/main names a snapshot folder."""
    repo = cache / f"models--{REPO.replace('/', '--')}"
    _write_model_folder(repo / "snapshots" / COMMIT, source)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """HF_HOME/HF_HUB_CACHE in a temporary folder and the hub client offline (no request can be made)."""
    cache = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    # The client reads these variables once, on import: set its constants as a fresh process would.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.mark.parametrize("explicit_cache_dir", [False, True])
def test_hf_hub_name_resolves_offline_from_the_cache(tmp_path, offline_hub, explicit_cache_dir, assert_weights_loaded):
    torch.manual_seed(0)
    source = timm.create_model("resnet18", num_classes=7)
    cache = tmp_path / "copied_cache" if explicit_cache_dir else offline_hub
    _write_hub_cache(cache, source)
    kwargs = {"cache_dir": cache} if explicit_cache_dir else {}
    backbone = create_backbone(f"timm/hf-hub:{REPO}", pretrained=True, **kwargs)
    assert_weights_loaded(backbone, source)
    assert backbone.num_features == 512
    config = backbone.data_config
    assert list(config["mean"]) == MEAN and list(config["std"]) == STD and tuple(config["input_size"]) == (3, 160, 160)


def test_hf_hub_name_missing_from_the_cache_fails_offline(offline_hub):
    # The hub client's own error (no request made: offline), not a name check of ours.
    with pytest.raises(LocalEntryNotFoundError, match="local cache"):
        TimmBackbone(f"hf-hub:{REPO}", pretrained=True)


def test_local_dir_name_loads_the_folder(tmp_path, offline_hub, assert_weights_loaded):
    torch.manual_seed(1)
    source = timm.create_model("resnet18", num_classes=7)
    folder = tmp_path / "my_model"
    _write_model_folder(folder, source)
    backbone = TimmBackbone(f"local-dir:{folder}", pretrained=True, in_chans=3)
    assert_weights_loaded(backbone, source)
    assert list(backbone.data_config["mean"]) == MEAN


@pytest.mark.parametrize("name", ["resnet18", "resnet18.a1_in1k", f"hf-hub:{REPO}", "local-dir:/some/folder"])
def test_names_timm_accepts_pass_the_check(name):
    check_timm_model_name(name)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("timm/resnet18", "hf-hub:timm/resnet18"),  # a repository id without its prefix: timm's hint is kept
        ("s3:bucket/model", "Unknown model source"),
        ("resnet81.a1_in1k", "did you mean"),
    ],
)
def test_names_timm_refuses_are_clear_errors(name, match):
    with pytest.raises(ValueError, match=f"`model_name`.*{match}"):
        check_timm_model_name(name)
