"""File writing for the whole package: atomic writes, and JSON with a fixed rule for NaN.

Every writer here goes through :func:`atomic_write_bytes`: the data goes to a temporary file in the target's
folder, is flushed to disk, and then replaces the target with ``os.replace`` (atomic on POSIX and Windows
within one file system). A run interrupted at any point leaves either the previous file or the new one, never a
half-written file, and the temporary file is removed when the write fails.

Figures and Markdown tables, which only reports write, stay in :mod:`ugmm_vision.report.io`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "NEW_FILE_MODE",
    "PathLike",
    "atomic_write_bytes",
    "atomic_write_text",
    "fsync_dir",
    "stage_file",
    "to_jsonable",
    "write_json",
]

PathLike = str | os.PathLike


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


NEW_FILE_MODE = 0o666 & ~_current_umask()  # what open() would give a new file; read once, at import


def fsync_dir(folder: Path) -> None:
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
    mode = target.stat().st_mode & 0o7777 if target.exists() else NEW_FILE_MODE
    tmp_name = stage_file(target.parent, target.name, data, mode=mode)
    try:
        os.replace(tmp_name, target)
    except BaseException:  # KeyboardInterrupt included: never leave the temporary file behind
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(target.parent)
    return target


def stage_file(folder: PathLike, name: str, data: bytes, *, mode: int = NEW_FILE_MODE) -> str:
    """Write ``data`` to a new temporary file ``.<name>.*.tmp`` in ``folder``, flushed to disk, with ``mode``.

    The first half of an atomic write (:func:`atomic_write_bytes`, and the several-file replacement in
    :mod:`ugmm_vision.destinations`): the caller renames the returned path into place or unlinks it. On any
    failure here (KeyboardInterrupt included) the temporary file is removed before the error propagates.

    Returns:
        The temporary file's path.
    """
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return tmp_name


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
