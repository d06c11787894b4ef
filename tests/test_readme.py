"""The README's Python quick start runs as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_quick_start():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(BLOCKS[index], f"README.md[python block {index}]", "exec"), namespace)
    if "trainer" in namespace:  # the training quick start: it must have learned and printed its test metrics
        printed = capsys.readouterr().out
        assert "test/acc" in printed and "test/ood/auroc_msp" in printed
        assert namespace["trainer"].callback_metrics["test/acc"] > 0.9
