"""Moved: the generic writers (atomic bytes and text, JSON with a fixed rule for NaN) to :mod:`ugmm_vision.io`,
:func:`save_figure` to :mod:`ugmm_vision.report.canvas`, :func:`markdown_table` to
:mod:`ugmm_vision.report.markdown`; re-exported here for one release."""

import os  # noqa: F401 - tests patch ``report.io.os.replace``: the very module object ugmm_vision.io uses

from ugmm_vision.io import NEW_FILE_MODE, atomic_write_bytes, atomic_write_text, fsync_dir, to_jsonable, write_json
from ugmm_vision.report.canvas import save_figure
from ugmm_vision.report.markdown import markdown_table

__all__ = ["atomic_write_bytes", "atomic_write_text", "markdown_table", "save_figure", "to_jsonable", "write_json"]

_NEW_FILE_MODE, _fsync_dir = NEW_FILE_MODE, fsync_dir  # the old private names
