"""Atomic writes survive interruptions; JSON follows its NaN rule; Markdown tables render as documented."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from ugmm_vision import io as report_io
from ugmm_vision.functional import reliability_diagram_data
from ugmm_vision.io import atomic_write_bytes, atomic_write_text, write_json
from ugmm_vision.report import markdown_table, save_figure


def test_write_replaces_content_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "report.md"  # missing parents are created
    assert atomic_write_text(path, "first\n") == path
    atomic_write_text(path, "second\r\nline ünïcode\n")
    assert path.read_bytes() == "second\r\nline ünïcode\n".encode()
    assert os.listdir(path.parent) == ["report.md"]


@pytest.mark.parametrize("fail_at", ["replace", "write", "fsync"])
def test_interrupted_write_keeps_previous_file_and_removes_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kill_mid_write, fail_at: str
) -> None:
    path = tmp_path / "report.json"
    atomic_write_text(path, '{"old": true}\n')

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt  # a Ctrl-C is a BaseException, not an Exception

    if fail_at == "write":
        kill_mid_write()  # half the bytes reach the temporary file
    else:
        monkeypatch.setattr(report_io.os, fail_at, interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_json(path, {"new": list(range(1000))})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"old": True}
    assert os.listdir(tmp_path) == ["report.json"]


def test_failed_first_write_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(report_io.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(tmp_path / "plot.png", b"\x89PNG")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_existing_permissions_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "shared.md"
    path.write_text("x")
    path.chmod(0o640)
    atomic_write_text(path, "y")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    fresh = atomic_write_text(tmp_path / "fresh.md", "z")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask  # like open(), not mkstemp's 0o600


def test_bad_arguments_name_them(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="`data`"):
        atomic_write_bytes(tmp_path / "a", "text")
    with pytest.raises(ValueError, match="`text`"):
        atomic_write_text(tmp_path / "a", b"bytes")
    with pytest.raises(ValueError, match="`path`"):
        atomic_write_text(tmp_path, "a folder")
    with pytest.raises(ValueError, match="`fig`"):
        save_figure(object(), tmp_path / "a.png")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_save_figure_format_from_suffix(tmp_path: Path, suffix: str, magic: bytes) -> None:
    fig = Figure(figsize=(1, 1))
    fig.subplots().plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / f"plot{suffix}", dpi=30)
    assert path.read_bytes().startswith(magic)
    assert os.listdir(tmp_path) == [f"plot{suffix}"]


@dataclasses.dataclass
class Summary:
    name: str
    values: tuple[float, ...]


def test_write_json_conversions_and_nan_rule(tmp_path: Path) -> None:
    diagram = reliability_diagram_data(torch.tensor([[0.9, 0.1], [0.8, 0.2]]), torch.tensor([0, 1]), n_bins=2)
    obj = {
        "acc": torch.tensor(0.75),
        "per_class": torch.tensor([0.5, float("nan")]),
        "count": np.int64(3),
        "ratio": np.float32(0.25),
        "flags": np.array([True, False]),
        "inf": [float("inf"), -math.inf, np.float64("nan")],
        "severity": {1: 0.5, 2: None},
        "diagram": diagram,
        "summary": Summary("ugmm", (1.0, float("nan"))),
        "path": tmp_path / "x.png",
        "labels": {"b", "a"},
    }
    path = write_json(tmp_path / "report.json", obj)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text and text.endswith("\n")
    loaded = json.loads(text)
    assert loaded["acc"] == 0.75 and loaded["per_class"] == [0.5, None]
    assert loaded["count"] == 3 and loaded["ratio"] == 0.25 and loaded["flags"] == [True, False]
    assert loaded["inf"] == [None, None, None]
    assert loaded["severity"] == {"1": 0.5, "2": None}
    assert loaded["diagram"] == {
        "confidence": [None, 0.85],
        "accuracy": [None, 0.5],
        "count": [0, 2],
        "bin_edges": [0.0, 0.5, 1.0],
    }
    assert loaded["summary"] == {"name": "ugmm", "values": [1.0, None]}
    assert loaded["path"] == str(tmp_path / "x.png")
    assert loaded["labels"] == ["a", "b"]  # sets are sorted (by repr) for a reproducible file


def test_write_json_rejects_unknown_types_with_their_place(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"`obj`.*object at obj\['a'\]\[1\]"):
        write_json(tmp_path / "r.json", {"a": [1, object()]})
    assert os.listdir(tmp_path) == []


def test_markdown_table_formats_aligns_and_escapes() -> None:
    rows = [
        {"head": "linear", "acc": 0.91234, "params": 650, "ece": torch.tensor(0.05), "note": "a|b\nc"},
        {"head": "ugmm", "acc": np.float32(0.5), "params": np.int64(1950), "ece": float("nan")},
    ]
    table = markdown_table(rows, ["head", "acc", "params", "ece", "note"], float_format=".3f")
    assert table.splitlines() == [
        "| head | acc | params | ece | note |",
        "| --- | ---: | ---: | ---: | --- |",
        "| linear | 0.912 | 650 | 0.050 | a\\|b c |",
        "| ugmm | 0.500 | 1950 | nan |  |",
    ]
    assert table.endswith("|\n")
    assert markdown_table([], ["a"]).splitlines() == ["| a |", "| --- |"]


@pytest.mark.parametrize(
    ("rows", "columns", "kwargs", "match"),
    [
        ([{"a": 1}], [], {}, "`columns`"),
        ([{"a": 1}], "a", {}, "`columns`"),
        ([1], ["a"], {}, "`rows`"),
        ([{"a": 1.0}], ["a"], {"float_format": "q"}, "`float_format`"),
    ],
)
def test_markdown_table_rejects_bad_arguments(rows, columns, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        markdown_table(rows, columns, **kwargs)
