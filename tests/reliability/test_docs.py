"""docs/reliability.md lists the reliability tests as they are now."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_reliability_doc_is_current():
    """docs/reliability.md differs from `python docs/make_reliability.py` output → fail, saying to rerun it."""
    spec = importlib.util.spec_from_file_location("make_reliability", ROOT / "docs" / "make_reliability.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.render()
    current = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    assert current == expected, "docs/reliability.md is out of date: run python docs/make_reliability.py"
