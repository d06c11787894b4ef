"""Where artefacts go: output paths checked before the work starts, and a folder of files replaced as one.

Used by every writer of the package: the evaluation report, the comparison, the prediction writer, export.

A long evaluation that only finds out at the end that ``--output_dir`` is a file, or sits on a read-only file
system, wastes the whole run: :func:`check_output_dir` and :func:`check_output_file` try the destination first
(create the folder, create and remove a temporary file in it) and raise a ``ValueError`` naming the argument.

A report is several files that describe each other (``report.json`` lists the plots). Writing them one by one
over an older report can leave a mix — new plots beside the old ``report.json`` after a failure part-way (a full
disk), or an old ``shift.png`` that the new report does not list. :func:`replace_files` writes every new file to
a temporary file in the folder first (a failure there leaves the previous report untouched), then removes the
files the old report owned that the new one does not write, and moves the new files into place, the index files
(``report.json``, ``report.md``) last. Renames need no space, so once the staging succeeded the swap cannot fail
for a full disk; a process killed during the swap leaves no index file at all (they are removed first), never
an index that lists files of another report.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from ugmm_vision.io import fsync_dir, stage_file

__all__ = ["check_output_dir", "check_output_file", "replace_files"]

PathLike = str | os.PathLike


def _reason(err: OSError) -> str:
    return f"{type(err).__name__}: {err.strerror or err}"


def check_output_dir(path: PathLike, *, argument: str = "output_dir") -> Path:
    """Create the folder ``path`` if needed and check that files can be written in it.

    Args:
        path: the output folder.
        argument: the name of the argument that gave it, for the message.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: naming ``argument`` and the path when it is an existing file, cannot be created, or is not
            writable (permissions, a read-only file system).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     check_output_dir(Path(folder) / "report").is_dir()
        True
        >>> with tempfile.NamedTemporaryFile() as handle:
        ...     check_output_dir(handle.name)
        Traceback (most recent call last):
        ...
        ValueError: Expected `output_dir` to be a folder, got ... which is an existing file
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"Expected `{argument}` to be a folder, got {str(folder)!r}, which is an existing file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(
            f"Expected `{argument}` to be a folder that can be created, got {str(folder)!r} ({_reason(err)})"
        ) from err
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(
            f"Expected `{argument}` to be a writable folder, got {str(folder)!r} ({_reason(err)}); "
            "nothing was computed yet"
        ) from err
    return folder


def check_output_file(path: PathLike, *, argument: str = "output_path") -> Path:
    """Check that the file ``path`` can be (over)written: not a folder, and its folder writable (created if needed).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     check_output_file(folder)
        Traceback (most recent call last):
        ...
        ValueError: Expected `output_path` to be a file path, got ... which is a folder
    """
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"Expected `{argument}` to be a file path, got {str(target)!r}, which is a folder")
    check_output_dir(target.parent, argument=f"{argument}'s folder")
    return target


def _stage(folder: Path, name: str, data: bytes) -> str:
    """Write ``data`` to a new temporary file in ``folder`` (flushed to disk); returns its path."""
    return stage_file(folder, name, data)


def replace_files(
    folder: PathLike,
    files: Mapping[str, bytes],
    *,
    owned: Iterable[str] = (),
    index: Iterable[str] = (),
) -> dict[str, Path]:
    """Replace the set of files a folder holds for one artefact (a report) by ``files``, as one.

    Args:
        folder: the folder (created if missing).
        files: new file contents by file name (names only, no sub-folders).
        owned: names of files the previous artefact may have written; those not in ``files`` are removed.
        index: names in ``files`` that describe the others (removed first, written last).

    Returns:
        The written paths by name.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = replace_files(folder, {"a.png": b"1", "report.json": b"{}"})
        ...     _ = replace_files(folder, {"report.json": b"[]"}, owned=["a.png", "report.json"], index=["report.json"])
        ...     sorted(p.name for p in Path(folder).iterdir())
        ['report.json']
    """
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    bad = [name for name in files if not name or Path(name).name != name or name in (".", "..")]
    if bad:
        raise ValueError(f"Expected `files` keyed by plain file names, got {bad}")
    index = [name for name in index if name in files]
    staged: dict[str, str] = {}
    try:
        for name, data in files.items():
            staged[name] = _stage(target, name, bytes(data))
    except BaseException:  # a full disk, an interrupt: the previous files stay as they were
        for tmp_name in staged.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
        raise
    for name in [*index, *(n for n in dict.fromkeys(owned) if n not in files)]:
        with contextlib.suppress(FileNotFoundError):
            (target / name).unlink()
    order = [name for name in files if name not in index] + index
    try:
        for name in order:
            os.replace(staged.pop(name), target / name)
    finally:
        for tmp_name in staged.values():  # only after a failed rename
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
    fsync_dir(target)
    return {name: target / name for name in files}
