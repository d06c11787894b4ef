"""The paper's MNIST configs: they parse on top of configs/digits.yaml and train a step on tiny local MNIST files."""

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ugmm_vision.backbones import FlattenBackbone
from ugmm_vision.cli import build_cli
from ugmm_vision.data import MNISTDataModule
from ugmm_vision.heads import MLPHead, UGMMHead, count_parameters

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PAPER = {"paper_mnist_ugmm.yaml": UGMMHead, "paper_mnist_mlp.yaml": MLPHead}


def write_tiny_mnist(root: Path) -> None:
    """40 training and 20 test images in MNIST's idx-ubyte format, where torchvision looks for them."""
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, per_class in (("train", 4), ("t10k", 2)):
        labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
        images = rng.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
        for name, array in (("images-idx3", images), ("labels-idx1", labels)):
            header = struct.pack(">I", 0x0800 + array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape)
            (raw / f"{prefix}-{name}-ubyte").write_bytes(header + array.tobytes())


@pytest.mark.parametrize("config", sorted(PAPER))
def test_paper_config_parses_on_top_of_the_base(config, in_tmp, capsys):
    with pytest.raises(SystemExit) as stop:
        build_cli(
            ["fit", "--config", str(CONFIGS / "digits.yaml"), "--config", str(CONFIGS / config), "--print_config"]
        )
    assert stop.value.code == 0
    printed = capsys.readouterr().out
    for expected in ("ugmm_vision.backbones.FlattenBackbone", "image_size: 28", "torch.optim.Adam\n", "MultiStepLR"):
        assert expected in printed, expected
    assert "ugmm_vision.data.MNISTDataModule" in printed and "batch_size: 256" in printed
    assert "ood_classes: []" in printed and "T_max" not in printed  # the digits base's settings are replaced


@pytest.mark.parametrize("config", sorted(PAPER))
def test_paper_config_trains_one_step_on_local_mnist_files(config, in_tmp):
    write_tiny_mnist(in_tmp / "data")
    cli = build_cli(
        [
            "fit",
            "--config",
            str(CONFIGS / "digits.yaml"),
            "--config",
            str(CONFIGS / config),
            "--data.init_args.download=false",
            "--data.init_args.ood_dataset=null",
            "--trainer.fast_dev_run=true",
        ]
    )
    model = cli.model
    assert isinstance(model.backbone, FlattenBackbone) and isinstance(model.head, PAPER[config])
    assert model.backbone.num_features == 784 and model.num_classes == 10
    assert isinstance(cli.datamodule, MNISTDataModule) and cli.datamodule.mean == (0.0,)
    assert cli.trainer.state.finished and torch.isfinite(cli.trainer.logged_metrics["train/loss"])
    if PAPER[config] is UGMMHead:
        widths = [(layer.in_features, layer.out_features) for layer in model.head.layers]
        assert widths == [(784, 128), (128, 64), (64, 10)]
        assert [layer.mixing_dropout for layer in model.head.layers] == [0.2, 0.0, 0.0]
        assert count_parameters(model.head) == 3 * (784 * 128 + 128 * 64 + 64 * 10)
    else:
        assert count_parameters(model.head) == (784 * 128 + 128) + (128 * 64 + 64) + (64 * 10 + 10)
