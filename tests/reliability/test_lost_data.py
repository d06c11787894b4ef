"""Silent wrong results and lost data (second pass, issue 17): a failing run never replaces a good file, and
non-finite outputs never reach one.

Before this pass: predict overwrote a good predictions.csv with NaN/−inf rows (entropy 0 reading "certain"); export
wrote the file before verifying it; a report folder could mix two reports; 16-bit PNGs were saturated; an
image-folder predict CSV had no ``path`` column. Verdict per row: fixed, as each test shows.
"""

import csv
import errno
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from ugmm_vision import destinations
from ugmm_vision import export as export_module
from ugmm_vision.callbacks import CSVPredictionWriter
from ugmm_vision.data import DigitsDataModule, ImageFolderDataModule, UnlabelledImageFolderDataModule
from ugmm_vision.export import export_classifier
from ugmm_vision.report.evaluate import evaluate_model

# These tests write the small, fast TorchScript format on purpose; its deprecation warning is not what they test.
pytestmark = pytest.mark.filterwarnings("ignore:The 'torchscript' export format is deprecated:FutureWarning")

GOOD_CSV = b"index,predicted_index,predicted_class,probability\n0,1,1,0.9\n"


def _nan_batchnorm(model):
    """Poison the first BatchNorm's running variance, as a corrupted checkpoint would."""
    norm = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
    norm.running_var[0] = float("nan")
    return model.eval()


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_nonfinite_predictions_keep_the_previous_csv(make_model, make_trainer, tmp_path):
    """predict with a NaN BatchNorm running_var over a good predictions.csv → ValueError naming the file, the count
    and the `nonfinite` option; the previous CSV is byte-identical and no temporary file is left (before: exit 0,
    the good CSV replaced by rows of NaN/−inf with entropy 0)."""
    target = tmp_path / "predictions.csv"
    target.write_bytes(GOOD_CSV)
    model = _nan_batchnorm(make_model())
    writer = CSVPredictionWriter(target)
    loader = DataLoader(TensorDataset(torch.rand(6, 1, 8, 8)), batch_size=4)
    with pytest.raises(ValueError, match="finite model outputs") as info:
        make_trainer(callbacks=[writer]).predict(model, loader, return_predictions=False)
    assert str(target) in str(info.value) and "6 of 6" in str(info.value) and "`nonfinite`" in str(info.value)
    assert target.read_bytes() == GOOD_CSV
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]


def test_nonfinite_predictions_flagged_by_option(make_model, make_trainer, tmp_path):
    """nonfinite="flag" → every row written with finite=False and empty prediction, probability and entropy cells
    (never an entropy of 0, which would read "certain"); finite rows keep their scores."""
    model = _nan_batchnorm(make_model())
    writer = CSVPredictionWriter(tmp_path / "p.csv", nonfinite="flag")
    make_trainer(callbacks=[writer]).predict(model, DataLoader(TensorDataset(torch.rand(3, 1, 8, 8))))
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len(rows) == 3 and {r["finite"] for r in rows} == {"False"}
    assert {r["entropy"] for r in rows} == {""} and {r["predicted_class"] for r in rows} == {""}

    from ugmm_vision.callbacks import prediction_rows

    logits = torch.tensor([[1.0, 0.0], [float("-inf"), float("-inf")], [float("inf"), 0.0], [0.0, float("-inf")]])
    out = prediction_rows({"logits": logits}, [0, 1, 2, 3])
    assert [r["finite"] for r in out] == [True, False, False, True]
    assert out[3]["entropy"] == pytest.approx(0.0) and out[3]["predicted_index"] == 0  # one −inf class: defined
    assert out[0]["entropy"] == pytest.approx(
        -(np.exp(1) / (1 + np.exp(1))) * np.log(np.exp(1) / (1 + np.exp(1)))
        - (1 / (1 + np.exp(1))) * np.log(1 / (1 + np.exp(1)))
    )


def test_prediction_writer_output_checked_before_predicting(make_model, make_trainer, tmp_path):
    """CSVPredictionWriter(output_path=<an existing folder>) → ValueError naming `output_path` at setup, before a
    single batch is predicted (before: an error only once every batch had been predicted)."""
    seen = []
    model = make_model()
    model.predict_step = lambda batch, batch_idx: seen.append(batch_idx)
    with pytest.raises(ValueError, match="`output_path`") as info:
        make_trainer(callbacks=[CSVPredictionWriter(tmp_path)]).predict(model, DataLoader(torch.rand(2, 1, 8, 8)))
    assert str(tmp_path) in str(info.value) and seen == []


def _image_folder(root, size=(10, 10)):
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            (root / split / name).mkdir(parents=True)
            for i in range(3):
                Image.new("L", size, 40 * i).save(root / split / name / f"{i}.png")
    return root


def test_image_folder_predict_writes_the_path_column(make_model, make_trainer, tmp_path):
    """predict on an ImageFolderDataModule (its test/ split) → the CSV has a `path` column naming each image file,
    in the dataset's order (before: no `path` column)."""
    data = ImageFolderDataModule(_image_folder(tmp_path / "data"), image_size=8, num_channels=1, batch_size=4)
    model = make_model(num_classes=2)
    writer = CSVPredictionWriter(tmp_path / "out.csv")
    make_trainer(callbacks=[writer]).predict(model, datamodule=data, return_predictions=False)
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    expected = sorted(str(p) for p in (tmp_path / "data" / "test").rglob("*.png"))
    assert [r["path"] for r in rows] == expected


@pytest.mark.slow
def test_export_failing_verification_keeps_the_previous_file(make_model, tmp_path, monkeypatch):
    """export_classifier whose verification fails over a good model.pt → ValueError; the previous file is
    byte-identical (the new file is verified in a temporary file first) and no temporary file is left (before:
    the failing file had already replaced the good one)."""
    model = make_model().eval()
    target = tmp_path / "model.pt"
    export_classifier(model, torch.rand(2, 1, 8, 8), target, "torchscript")
    before = target.read_bytes()
    with torch.no_grad():
        next(model.head.parameters()).add_(1.0)  # the new export differs
    monkeypatch.setattr(export_module, "_verify", lambda *args, **kwargs: 1.0)  # "the logits differ by 1"
    with pytest.raises(ValueError, match="within"):
        export_classifier(model, torch.rand(2, 1, 8, 8), target, "torchscript")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def _report_kwargs(tmp_path, **kwargs):
    return dict(output_dir=tmp_path, temperature_scaling=False, corruptions=["contrast"], severities=(1,), **kwargs)


@pytest.mark.slow
def test_evaluate_failing_part_way_keeps_the_previous_report(make_model, make_trainer, tmp_path, monkeypatch):
    """evaluate into a folder with an older report, the disk filling up while the third new file is written →
    OSError; every file of the old report is byte-identical, none was added, no temporary file is left (before:
    the new PNGs written so far stood beside the old report.json)."""
    torch.manual_seed(0)
    model, data = make_model(), DigitsDataModule(ood_classes=(8, 9), batch_size=512)
    evaluate_model(make_trainer(), model, data, **_report_kwargs(tmp_path))
    before = _snapshot(tmp_path)
    assert "shift.png" in before and "report.json" in before

    real_stage, calls = destinations._stage, []

    def stage(folder, name, data):
        calls.append(name)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_stage(folder, name, data)

    monkeypatch.setattr(destinations, "_stage", stage)
    with torch.no_grad():
        next(model.head.parameters()).add_(1.0)
    with pytest.raises(OSError, match="No space"):
        evaluate_model(make_trainer(), model, data, **_report_kwargs(tmp_path))
    assert _snapshot(tmp_path) == before


@pytest.mark.slow
def test_evaluate_without_shift_removes_the_old_shift_plot(make_model, make_trainer, tmp_path):
    """evaluate with shift, then without into the same folder → shift.png is gone; the folder holds exactly the
    files report.json lists (plus files the report does not own, which are kept) (before: the old shift.png stayed,
    listed by no report)."""
    torch.manual_seed(0)
    model, data = make_model(), DigitsDataModule(ood_classes=(8, 9), batch_size=512)
    (tmp_path / "notes.txt").write_text("mine")
    evaluate_model(make_trainer(), model, data, **_report_kwargs(tmp_path))
    assert (tmp_path / "shift.png").exists()
    report = evaluate_model(make_trainer(), model, data, **_report_kwargs(tmp_path, shift=False))
    listed = json.loads((tmp_path / "report.json").read_text())["paths"]
    assert listed == report["paths"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["notes.txt", *(p.rsplit("/", 1)[1] for p in listed.values())]
    )
    assert not (tmp_path / "shift.png").exists()


def _png16(path, values):
    Image.fromarray(values.astype(np.uint16)).save(path)  # PIL mode "I;16": a 16-bit grey PNG
    with Image.open(path) as image:
        assert image.mode.startswith("I")


def test_sixteen_bit_png_scaled_not_saturated(tmp_path):
    """16-bit grey PNGs in an image folder and a predict folder → pixels scaled by 65535 (within 8-bit rounding),
    not saturated to 1.0 (before: 99.6 % of the pixels became 1.0)."""
    values = np.linspace(0, 65535, 64).reshape(8, 8)
    root = tmp_path / "data"
    for split in ("train", "test"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for i in range(2):
                _png16(root / split / name / f"{i}.png", values)
    expected = torch.tensor(values / 65535, dtype=torch.float32)[None]  # (1, 8, 8)
    data = ImageFolderDataModule(root, num_channels=1, mean=(0.0,), std=(1.0,), batch_size=2)
    data.setup("test")
    torch.testing.assert_close(data.test_set[0][0], expected, atol=1 / 255, rtol=0)
    flat = tmp_path / "flat"
    flat.mkdir()
    _png16(flat / "x.png", values)
    unlabelled = UnlabelledImageFolderDataModule(flat, num_classes=2, num_channels=1, mean=(0.0,), std=(1.0,))
    unlabelled.setup("predict")
    torch.testing.assert_close(unlabelled.predict_set[0], expected, atol=1 / 255, rtol=0)
    rgb = UnlabelledImageFolderDataModule(flat, num_classes=2, num_channels=3, mean=(0.0,), std=(1.0,))
    rgb.setup("predict")
    torch.testing.assert_close(rgb.predict_set[0], expected.expand(3, 8, 8), atol=1 / 255, rtol=0)
