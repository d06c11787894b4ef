"""``ugmm-vision predict`` over a folder of PNGs with ``configs/predict_folder.yaml``: one CSV row per image."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from ugmm_vision.callbacks import CSVPredictionWriter, prediction_rows
from ugmm_vision.cli import build_cli
from ugmm_vision.data import UnlabelledImageFolderDataModule

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven"]


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(7):
        pixels = (torch.rand(8, 8, generator=g) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels, "L").save(folder / f"img_{i}.png")
    (folder / "README.txt").write_text("not an image")
    return folder


def _predict(tmp_path: Path, images: Path, *extra: str):
    return build_cli(
        [
            "predict",
            "--config",
            str(CONFIGS / "digits.yaml"),
            *extra,
            "--config",
            str(CONFIGS / "predict_folder.yaml"),
            f"--data.init_args.root={images}",
            "--data.init_args.image_size=8",
            "--data.init_args.num_channels=1",
            "--data.init_args.batch_size=3",  # several batches, the last one short
            f"--data.init_args.class_names=[{', '.join(NAMES)}]",
        ]
    )


@pytest.mark.parametrize(
    ("extra", "density_columns"),
    [
        ([], ["log_density"]),
        (["--model.init_args.head.init_args.hidden=[16]"], ["log_density", "hidden_density"]),
        (["--config", str(CONFIGS / "digits_linear.yaml")], []),
    ],
    ids=["ugmm", "stacked-ugmm", "linear"],
)
def test_predict_folder_writes_one_row_per_image(tmp_path, monkeypatch, images, extra, density_columns) -> None:
    monkeypatch.chdir(tmp_path)
    cli = _predict(tmp_path, images, *extra)
    rows = list(csv.DictReader((tmp_path / "outputs/predictions/predictions.csv").open()))
    base = ["index", "path", "predicted_index", "predicted_class", "probability", "entropy", "energy_score"]
    assert list(rows[0]) == base + density_columns
    assert [Path(r["path"]).name for r in rows] == [f"img_{i}.png" for i in range(7)]

    # An independent computation from the same images and weights, in float64.
    model = cli.model.eval()
    x = torch.stack([cli.datamodule.predict_set[i] for i in range(7)])
    with torch.no_grad():
        logits = model(x).double()  # (7, 8)
    probs = logits.softmax(-1)
    for i, row in enumerate(rows):
        label = int(probs[i].argmax())
        assert (int(row["index"]), int(row["predicted_index"]), row["predicted_class"]) == (i, label, NAMES[label])
        expected = {
            "probability": probs[i].max(),
            "entropy": -(probs[i] * probs[i].log()).sum(),
            "energy_score": torch.logsumexp(logits[i], 0),
        }
        if density_columns:
            expected["log_density"] = torch.logsumexp(logits[i], 0)  # log Σ_c p(x | c): the class log-densities
        for name, value in expected.items():
            assert math.isclose(float(row[name]), float(value), rel_tol=1e-5, abs_tol=1e-6), name
    if "hidden_density" in density_columns:
        with torch.no_grad():
            hidden = model.head.forward_hidden(model.backbone(x))[0].sum(-1)  # (7,)
        torch.testing.assert_close(
            torch.tensor([float(r["hidden_density"]) for r in rows]), hidden, rtol=1e-5, atol=1e-5
        )


def test_batch_interval_writes_the_same_file(tmp_path, monkeypatch, images) -> None:
    monkeypatch.chdir(tmp_path)
    cli = _predict(tmp_path, images, "--return_predictions=false")
    by_epoch = (tmp_path / "outputs/predictions/predictions.csv").read_text()
    writer = CSVPredictionWriter(tmp_path / "by_batch.csv", write_interval="batch")  # class names from the data
    cli.trainer.callbacks.append(writer)
    assert cli.trainer.predict(cli.model, datamodule=cli.datamodule, return_predictions=False) is None
    assert (tmp_path / "by_batch.csv").read_text() == by_epoch and by_epoch.count("\n") == 8


def test_prediction_rows_and_arguments() -> None:
    outputs = {"logits": torch.tensor([[1.0, 1.0, 1.0], [10.0, 0.0, 0.0]]), "targets": torch.tensor([2, 0])}
    rows = prediction_rows(outputs, [4, 9], paths=[f"f{i}.png" for i in range(10)])
    assert [r["path"] for r in rows] == ["f4.png", "f9.png"] and [r["target"] for r in rows] == [2, 0]
    assert math.isclose(rows[0]["entropy"], math.log(3)) and math.isclose(rows[0]["probability"], 1 / 3)
    assert math.isclose(rows[0]["energy_score"], 1 + math.log(3))
    with pytest.raises(ValueError, match="`indices`"):
        prediction_rows(outputs, [1])
    for kwargs, name in (({"output_path": ""}, "output_path"), ({"write_interval": "step"}, "write_interval")):
        with pytest.raises(ValueError, match=f"`{name}`"):
            CSVPredictionWriter(**{"output_path": "p.csv", **kwargs})
    with pytest.raises(ValueError, match="`class_names`"):
        CSVPredictionWriter("p.csv", class_names="ab")


def test_unlabelled_data_module_arguments(tmp_path, images) -> None:
    with pytest.raises(ValueError, match="`class_names` or `num_classes`"):
        UnlabelledImageFolderDataModule(images)
    with pytest.raises(ValueError, match="`num_classes`"):
        UnlabelledImageFolderDataModule(images, class_names=["a", "b"], num_classes=3)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="image files"):
        UnlabelledImageFolderDataModule(empty, num_classes=2).setup("predict")
    dm = UnlabelledImageFolderDataModule(images, num_classes=3)
    assert dm.class_names == ["0", "1", "2"]
    with pytest.raises(RuntimeError, match="with `predict` only"):
        dm.train_dataloader()
