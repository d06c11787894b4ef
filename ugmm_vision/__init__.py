"""ugmm_vision: probabilistic uGMM head layers for vision backbones, with calibration and uncertainty metrics.

The public API lives in the subpackages: :mod:`ugmm_vision.functional`, :mod:`ugmm_vision.layers`,
:mod:`ugmm_vision.heads`, :mod:`ugmm_vision.backbones`, :mod:`ugmm_vision.models`, :mod:`ugmm_vision.data`,
:mod:`ugmm_vision.metrics`. The most used names are re-exported here, imported on first use so that
``import ugmm_vision.functional`` does not pay for Lightning and timm.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:  # one version source: pyproject.toml, read from the installed package's metadata
    __version__ = version("ugmm_vision")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

_EXPORTS = {
    "DigitsDataModule": "ugmm_vision.data",
    "ImageClassifier": "ugmm_vision.models",
    "LinearHead": "ugmm_vision.heads",
    "MLPHead": "ugmm_vision.heads",
    "SmallCNN": "ugmm_vision.backbones",
    "TimmBackbone": "ugmm_vision.backbones",
    "UGMMHead": "ugmm_vision.heads",
    "UGMMLayer": "ugmm_vision.layers",
    "count_parameters": "ugmm_vision.heads",
    "create_backbone": "ugmm_vision.backbones",
    "ugmm_log_prob": "ugmm_vision.functional",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ugmm_vision' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
