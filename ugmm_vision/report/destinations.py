"""Moved to :mod:`ugmm_vision.destinations` (export, the prediction writer and the comparison use it too);
re-exported here for one release."""

from ugmm_vision.destinations import check_output_dir, check_output_file, replace_files

__all__ = ["check_output_dir", "check_output_file", "replace_files"]
