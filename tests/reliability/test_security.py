"""Files from outside (dataset batches, checkpoints) never run code: crafted payloads are refused, nothing executes."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from ugmm_vision.data import CIFAR10DataModule, CIFAR100DataModule
from ugmm_vision.data.cifar_files import load_cifar_pickle
from ugmm_vision.models.checkpoints import UntrustedClassPathError, check_checkpoint_file, factory_from_spec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


class _Payload:
    """Pickles to a call of ``os.system`` that creates ``marker`` (what an attacker's batch would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _good_batch(n=4, key="labels"):
    rng = np.random.default_rng(0)
    return {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), key: [i % 10 for i in range(n)]}


def _write_cifar10(folder, payload_file=None, payload=None):
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        obj = payload if name == payload_file else _good_batch()
        (folder / name).write_bytes(pickle.dumps(obj))
    meta = payload if payload_file == "batches.meta" else {"label_names": [f"c{i}" for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))


@pytest.mark.parametrize("payload_file", ["data_batch_1", "test_batch", "batches.meta"])
@pytest.mark.parametrize("protocol_wrapper", ["plain", "inside_dict"])
def test_crafted_cifar_batch_does_not_execute(tmp_path, payload_file, protocol_wrapper):
    """A CIFAR batch whose pickle calls os.system: setup() refuses it naming the file, and the marker never appears."""
    marker = tmp_path / "executed"
    payload = _Payload(marker) if protocol_wrapper == "plain" else {"data": _Payload(marker), "labels": [0]}
    _write_cifar10(tmp_path / "cifar-10-batches-py", payload_file, payload)
    dm = CIFAR10DataModule(root=tmp_path, download=False, verify_checksums=False, ood_dataset=None, val_fraction=0.25)
    refused = rf"CIFAR file .*{payload_file}.*Refused to load the global '(posix|os)\.system'"
    with pytest.raises(ValueError, match=refused):
        dm.setup("fit" if payload_file != "test_batch" else "test")
    assert not marker.exists()


def test_crafted_cifar100_batch_does_not_execute(tmp_path):
    marker = tmp_path / "executed"
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "train").write_bytes(pickle.dumps(_Payload(marker)))
    (folder / "test").write_bytes(pickle.dumps(_good_batch(key="fine_labels")))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)]}))
    dm = CIFAR100DataModule(root=tmp_path, download=False, verify_checksums=False, ood_dataset=None)
    with pytest.raises(ValueError, match=r"CIFAR file .*train"):
        dm.setup("fit")
    assert not marker.exists()


def test_good_cifar_batches_still_load_at_every_protocol(tmp_path):
    """The restricted reader accepts what numpy writes at protocols 2, 4 and 5 (and bytes keys' encode call)."""
    batch = _good_batch(6)
    for protocol in (2, 4, 5):
        path = tmp_path / f"batch{protocol}"
        path.write_bytes(pickle.dumps({**batch, "batch_label": b"raw"}, protocol=protocol))
        loaded = load_cifar_pickle(path)
        np.testing.assert_array_equal(loaded["data"], batch["data"])
        assert loaded["labels"] == batch["labels"]


@pytest.mark.parametrize("damage", ["truncated", "not_pickle", "wrong_shape"])
def test_damaged_cifar_batch_names_the_file(tmp_path, damage):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    path = folder / "data_batch_2"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "not_pickle":
        path.write_text("hello")
    else:
        path.write_bytes(pickle.dumps({"data": np.zeros((2, 10), np.uint8), "labels": [0, 1]}))
    dm = CIFAR10DataModule(root=tmp_path, download=False, verify_checksums=False, ood_dataset=None)
    with pytest.raises(ValueError, match=r"CIFAR file .*data_batch_2"):
        dm.setup("fit")


# -- checkpoints naming code ----------------------------------------------------------------------------------------


def _tiny_checkpoint(path, hyper_parameters):
    torch.save(
        {
            "state_dict": {"w": torch.zeros(1)},
            "pytorch-lightning_version": "2.6.0",
            "hyper_parameters": hyper_parameters,
        },
        path,
    )


def _system_spec(marker):
    return {"class_path": "os.system", "init_args": {"command": f"touch '{marker}'"}}


@pytest.mark.parametrize("key", ["optimizer", "lr_scheduler"])
def test_load_from_checkpoint_refuses_untrusted_class_path(tmp_path, key):
    """A weights-only-clean checkpoint naming os.system as optimiser/scheduler: refused naming file and key."""
    from ugmm_vision import ImageClassifier, LinearHead, SmallCNN

    marker = tmp_path / "executed"
    path = tmp_path / "crafted.ckpt"
    _tiny_checkpoint(path, {"num_classes": 3, key: _system_spec(marker)})
    with pytest.raises(
        UntrustedClassPathError, match=rf"crafted\.ckpt.*hyper_parameters\.{key}\.class_path.*os\.system"
    ):
        ImageClassifier.load_from_checkpoint(path, backbone=SmallCNN(in_chans=1), head=LinearHead)
    assert not marker.exists()


@pytest.mark.parametrize(
    "hyper_parameters",
    [
        {"_class_path": "subprocess.Popen"},  # the model class LightningCLI would instantiate
        {"_instantiator": "os.system"},
        {"head": {"init_args": {"act_layer": "os.system"}}},  # an import-path string where a type is expected
        {"optimizer": {"class_path": ["os.system"]}},
    ],
    ids=["model", "instantiator", "plain_string", "not_a_string"],
)
def test_checkpoint_reader_refuses_any_untrusted_path(tmp_path, hyper_parameters):
    path = tmp_path / "crafted.ckpt"
    _tiny_checkpoint(path, hyper_parameters)
    with pytest.raises(UntrustedClassPathError, match=r"crafted\.ckpt.*refused"):
        check_checkpoint_file(path)


def test_cli_refuses_crafted_checkpoint_before_import(tmp_path):
    """`ugmm-vision test --ckpt_path crafted.ckpt`: refused at argument parsing, the payload never runs."""
    from ugmm_vision.cli import build_cli

    marker = tmp_path / "executed"
    path = tmp_path / "crafted.ckpt"
    _tiny_checkpoint(path, {"num_classes": 8, "optimizer": _system_spec(marker)})
    args = ["test", "--config", str(CONFIGS / "digits.yaml"), "--ckpt_path", str(path), "--trainer.logger=false"]
    with pytest.raises(UntrustedClassPathError, match=r"`ckpt_path`.*crafted\.ckpt.*os\.system"):
        build_cli(args)
    assert not marker.exists()


def test_names_imported_into_trusted_modules_are_refused_when_resolved():
    """`ugmm_vision.models.trust.importlib` passes the prefix check; resolving it finds a module: refused."""
    with pytest.raises(UntrustedClassPathError, match=r"optimizer\.class_path.*not a class defined there"):
        factory_from_spec({"class_path": "ugmm_vision.models.trust.importlib"})
    with pytest.raises(UntrustedClassPathError, match=r"not a class defined there"):  # a foreign class re-exported
        factory_from_spec({"class_path": "ugmm_vision.models.checkpoints.Path"})


def test_trusted_specs_still_resolve():
    spec = {"class_path": "torch.optim.lr_scheduler.StepLR", "init_args": {"step_size": 2}}
    factory = factory_from_spec(spec, argument="lr_scheduler", base=torch.optim.lr_scheduler.LRScheduler)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    assert isinstance(factory(optimizer), torch.optim.lr_scheduler.StepLR)
    with pytest.raises(UntrustedClassPathError, match=r"`optimizer.class_path` to name a subclass of Optimizer"):
        factory_from_spec({"class_path": "torch.nn.Linear"}, base=torch.optim.Optimizer)
