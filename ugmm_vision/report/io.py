"""Writing report files safely: atomic writes, JSON with a fixed rule for NaN, Markdown tables.

Every writer here goes through :func:`atomic_write_bytes`: the data goes to a temporary file in the target's
folder, is flushed to disk, and then replaces the target with ``os.replace`` (atomic on POSIX and Windows
within one file system). A run interrupted at any point leaves either the previous file or the new one, never a
half-written file, and the temporary file is removed when the write fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = ["atomic_write_bytes", "atomic_write_text", "markdown_table", "save_figure", "to_jsonable", "write_json"]

PathLike = str | os.PathLike


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_NEW_FILE_MODE = 0o666 & ~_current_umask()  # what open() would give a new file; read once, at import


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable where the platform allows opening a folder (POSIX)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``.

    Missing parent folders are created. A file that already exists keeps its permission bits; a new one gets
    the usual ``0o666 & ~umask``.

    Args:
        path: the file to (over)write.
        data: its full new content.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     target = atomic_write_bytes(Path(folder) / "out.bin", b"\\x00\\x01")
        ...     target.read_bytes(), sorted(p.name for p in target.parent.iterdir())
        (b'\\x00\\x01', ['out.bin'])
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"Expected `data` to be bytes, got {type(data).__name__}")
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"Expected `path` to be a file path, got the folder {str(target)!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = target.stat().st_mode & 0o7777 if target.exists() else _NEW_FILE_MODE
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:  # KeyboardInterrupt included: never leave the temporary file behind
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(target.parent)
    return target


def atomic_write_text(path: PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`); newlines are written as given.

    Args:
        path: the file to (over)write.
        text: its full new content.
        encoding: text encoding.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     atomic_write_text(Path(folder) / "report.md", "# Report\\n").read_text()
        '# Report\\n'
    """
    if not isinstance(text, str):
        raise ValueError(f"Expected `text` to be a str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode(encoding))


def save_figure(fig: Figure, path: PathLike, *, dpi: int = 150) -> Path:
    """Render ``fig`` in memory and write it to ``path`` atomically; the format comes from the suffix.

    Args:
        fig: the figure to save (it is not closed; figures built by :mod:`ugmm_vision.report.plots` are not
            registered with pyplot, so they are freed like any other object).
        path: destination, e.g. ``reliability.png``; ``.png``, ``.pdf`` and ``.svg`` work.
        dpi: resolution of raster formats.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> import tempfile
        >>> fig = Figure(figsize=(1, 1))
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     save_figure(fig, Path(folder) / "empty.png", dpi=20).read_bytes()[:4]
        b'\\x89PNG'
    """
    if not isinstance(fig, Figure):
        raise ValueError(f"Expected `fig` to be a matplotlib Figure, got {type(fig).__name__}")
    target = Path(path)
    fmt = target.suffix.lstrip(".").lower() or "png"
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi)  # rendered fully before anything touches the disk
    return atomic_write_bytes(target, buffer.getvalue())


_shortest_float32 = np.vectorize(lambda v: float(str(np.float32(v))), otypes=[object])
"""Each float32 as the Python float of its shortest decimal: 0.85, not 0.8500000238418579."""


def to_jsonable(obj: Any, *, _where: str = "obj") -> Any:
    """Convert ``obj`` to plain JSON types, following the rules of :func:`write_json`.

    Example:
        >>> to_jsonable({"acc": torch.tensor(0.5), "ece": float("nan"), 3: np.int64(7), "bins": (1, 2)})
        {'acc': 0.5, 'ece': None, '3': 7, 'bins': [1, 2]}
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu()
        obj = obj.float().numpy() if obj.dtype == torch.bfloat16 else obj.numpy()  # numpy has no bfloat16
    if isinstance(obj, (np.ndarray, np.generic)):
        if np.issubdtype(obj.dtype, np.floating) and obj.dtype.itemsize <= 4:
            obj = _shortest_float32(obj.astype(np.float32))
        return to_jsonable(obj.tolist(), _where=_where)  # 0-dim → scalar, else nested lists
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    elif isinstance(obj, tuple) and hasattr(obj, "_asdict"):  # NamedTuple, e.g. ReliabilityDiagram
        obj = obj._asdict()
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            key = to_jsonable(key, _where=_where)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise ValueError(f"Expected `obj` to have str or number keys, got {key!r} in {_where}")
            name = key if isinstance(key, str) else json.dumps(key)  # 3 -> "3", True -> "true", as json does
            out[name] = to_jsonable(value, _where=f"{_where}[{key!r}]")
        return out
    if isinstance(obj, (Sequence, set, frozenset)) and not isinstance(obj, (bytes, bytearray)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(v, _where=f"{_where}[{i}]") for i, v in enumerate(items)]
    raise ValueError(f"Expected `obj` to hold only JSON-convertible values, got {type(obj).__name__} at {_where}")


def write_json(path: PathLike, obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as strict JSON to ``path`` atomically.

    Conversion rules (applied recursively by :func:`to_jsonable`):

    * tensors and numpy arrays become (nested) lists, 0-dim ones and numpy scalars plain numbers; float32 and
      narrower values are written with the shortest decimal that reads back to the same float32 (``0.85``, not
      ``0.8500000238418579``);
    * **every non-finite float — NaN, +inf, −inf — becomes** ``null``: strict JSON has no such numbers and
      Python's default ``NaN`` token breaks other parsers. In our reports a NaN means "undefined" (an empty bin,
      a metric with no samples), which is what ``null`` says; readers must treat ``null`` as "not available";
    * tuples, lists and sets become lists (sets sorted by ``repr``); NamedTuples and dataclasses become objects;
    * mapping keys become strings (``{3: ...}`` is written ``{"3": ...}``); paths become strings.

    Anything else raises ``ValueError`` naming where it sits in ``obj``.

    Args:
        path: the file to (over)write.
        obj: the data.
        indent: JSON indentation.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     print(write_json(Path(folder) / "m.json", {"ece": torch.tensor(float("nan"))}, indent=0).read_text())
        {
        "ece": null
        }
        <BLANKLINE>
    """
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False, ensure_ascii=False)
    return atomic_write_text(path, text + "\n")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _unwrap(value: Any) -> Any:
    """A 0-dim tensor or array, or a numpy scalar, as a Python scalar; anything else unchanged."""
    if (isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0) or isinstance(value, np.generic):
        return value.item()
    return value


def _cell(value: Any, float_format: str) -> str:
    value = _unwrap(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else format(value, float_format)
    text = str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


def markdown_table(rows: list[dict[str, Any]], columns: list[str], *, float_format: str = ".4f") -> str:
    """A GitHub-flavoured Markdown table of ``rows`` restricted to ``columns``, in that order.

    Floats are formatted with ``float_format`` (NaN is written ``nan``); 0-dim tensors are unwrapped; a missing
    key or ``None`` gives an empty cell; ``|`` is escaped and newlines become spaces. Columns whose cells are all
    numbers are right-aligned.

    Args:
        rows: one dict per table row.
        columns: keys to show, in order; also the header.
        float_format: format spec for floats, e.g. ``".4f"`` or ``".2%"``.

    Returns:
        The table, one line per row, ending with a newline.

    Example:
        >>> rows = [{"head": "linear", "acc": 0.91234, "ece": 0.05}, {"head": "ugmm", "acc": 0.9, "ece": None}]
        >>> print(markdown_table(rows, ["head", "acc", "ece"]), end="")
        | head | acc | ece |
        | --- | ---: | ---: |
        | linear | 0.9123 | 0.0500 |
        | ugmm | 0.9000 |  |
    """
    if isinstance(columns, str) or not isinstance(columns, Sequence) or not columns:
        raise ValueError(f"Expected `columns` to be a non-empty list of keys, got {columns!r}")
    if not isinstance(rows, Sequence) or not all(isinstance(row, Mapping) for row in rows):
        raise ValueError("Expected `rows` to be a list of dicts")
    try:
        format(1.0, float_format)
    except (ValueError, TypeError) as err:
        raise ValueError(f"Expected `float_format` to be a float format spec, got {float_format!r}") from err

    def numeric(column: str) -> bool:
        values = [_unwrap(row.get(column)) for row in rows if row.get(column) is not None]
        return bool(values) and all(_is_number(v) for v in values)

    header = [_cell(column, float_format) for column in columns]
    rule = ["---:" if numeric(column) else "---" for column in columns]
    body = [[_cell(row.get(column), float_format) for column in columns] for row in rows]
    return "".join("| " + " | ".join(line) + " |\n" for line in [header, rule, *body])
