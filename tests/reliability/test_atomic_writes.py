"""Interrupted writes: a run killed while writing its report or export leaves the previous files intact.

The kill is simulated where it hurts most (the ``kill_mid_write`` fixture of tests/conftest.py): half of the new
file's bytes have reached the disk when a ``KeyboardInterrupt`` (a ``BaseException``, like Ctrl-C) arrives.
"""

import json
import os

import pytest
import torch

from ugmm_vision.data import DigitsDataModule
from ugmm_vision.report.evaluate import evaluate_model

# These tests write the small, fast TorchScript format on purpose; its deprecation warning is not what they test.
pytestmark = pytest.mark.filterwarnings("ignore:The 'torchscript' export format is deprecated:FutureWarning")


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_evaluate_killed_while_writing_keeps_the_previous_report(
    make_model, make_trainer, tmp_path, monkeypatch, kill_mid_write
):
    """evaluate_model stopped half-way through writing report.json → the previous report.json and report.md are
    byte-identical, no temporary file is left, and the old report still parses."""
    torch.manual_seed(0)
    model, data = make_model(), DigitsDataModule(ood_classes=(8, 9), batch_size=256)
    kwargs = dict(output_dir=tmp_path, shift=False, temperature_scaling=False)
    first = evaluate_model(make_trainer(), model, data, **kwargs)
    before = _snapshot(tmp_path)
    assert {"report.json", "report.md"} <= set(before)

    with torch.no_grad():  # the second run would report different numbers
        next(model.head.parameters()).add_(1.0)
    interrupted = kill_mid_write(starts_with=b"{")
    with pytest.raises(KeyboardInterrupt):
        evaluate_model(make_trainer(), model, data, **kwargs)
    monkeypatch.undo()

    assert interrupted and interrupted[0] > 1000  # the new JSON was half on disk when the run stopped
    after = _snapshot(tmp_path)
    assert sorted(after) == sorted(before)  # no ".report.json.*.tmp" left behind
    assert after["report.json"] == before["report.json"] and after["report.md"] == before["report.md"]
    assert json.loads(after["report.json"])["id"]["acc"] == pytest.approx(first["id"]["acc"])


def test_export_killed_while_writing_keeps_the_previous_file(make_model, tmp_path, monkeypatch, kill_mid_write):
    """export_classifier stopped half-way through writing model.pt → the previous export is byte-identical and
    still loads; no temporary file is left."""
    export = pytest.importorskip("ugmm_vision.export")
    torch.manual_seed(0)
    model, example = make_model().eval(), torch.randn(2, 1, 8, 8)
    path = tmp_path / "model.pt"
    export.export_classifier(model, example, path, "torchscript", verify=False)
    before = path.read_bytes()

    interrupted = kill_mid_write(starts_with=b"PK")  # TorchScript files are zip archives
    with pytest.raises(KeyboardInterrupt):
        export.export_classifier(make_model().eval(), example, path, "torchscript", verify=False)
    monkeypatch.undo()

    assert interrupted and os.listdir(tmp_path) == ["model.pt"]
    assert path.read_bytes() == before
    torch.testing.assert_close(torch.jit.load(path)(example), model(example), atol=1e-5, rtol=1e-5)
