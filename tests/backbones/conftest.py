"""What the backbone tests share: the check that a backbone holds a source model's weights."""

from __future__ import annotations

import pytest
import torch


def _assert_weights_loaded(backbone, source) -> None:
    loaded = backbone.model.state_dict()
    for key, value in source.state_dict().items():
        if key.startswith("fc."):
            assert key not in loaded  # classifier dropped: num_classes=0
        else:
            torch.testing.assert_close(loaded[key], value, msg=key)


@pytest.fixture(scope="session")
def assert_weights_loaded():
    """``assert_weights_loaded(backbone, source)``: every weight of the timm model ``source`` is in ``backbone``,
    except its classifier (``fc.*``), which the backbone (``num_classes=0``) must not hold."""
    return _assert_weights_loaded
