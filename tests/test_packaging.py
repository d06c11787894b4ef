"""Packaging: one version source, the console script's ``--version``, typing marker, licence and declared imports."""

import ast
import subprocess
import sys
from importlib.metadata import metadata, requires, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import ugmm_vision
from ugmm_vision.cli import build_cli

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ugmm_vision"

# Import names that differ from their distribution's name, and the ones the standard library or an optional
# dependency provides (checked separately).
_IMPORT_TO_DIST = {"PIL": "pillow", "sklearn": "scikit-learn", "yaml": "pyyaml", "laplace": "laplace-torch"}
_WITH_TORCH = {"triton"}  # installed with torch's CUDA builds; imported only where present


def test_version_comes_from_the_installed_metadata():
    assert ugmm_vision.__version__ == version("ugmm_vision")
    assert f'"{version("ugmm_vision")}"' not in (PACKAGE / "__init__.py").read_text()  # not written twice


def test_version_flag_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_cli(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.split()[-1] == version("ugmm_vision")


@pytest.mark.slow
def test_console_script_version():
    script = Path(sys.executable).parent / "ugmm-vision"
    run = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120, check=True)
    assert run.stdout.strip() == f"ugmm-vision {version('ugmm_vision')}"


def test_typed_marker_licence_and_urls():
    assert (PACKAGE / "py.typed").is_file()
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    meta = metadata("ugmm_vision")
    assert meta["License-Expression"] == "MIT"
    assert any(url.startswith("Paper, https://") for url in meta.get_all("Project-URL"))
    assert "Typing :: Typed" in meta.get_all("Classifier")


def _top_level_imports() -> set[str]:
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_every_direct_import_is_declared():
    declared, extras = set(), {}
    for text in requires("ugmm_vision"):
        requirement = Requirement(text)
        name = requirement.name.lower()
        marker = str(requirement.marker) if requirement.marker else ""
        if "extra ==" in marker:
            extras.setdefault(marker.split("extra ==")[1].strip().strip("\"'"), set()).add(name)
        else:
            declared.add(name)
    third_party = {
        name for name in _top_level_imports() if name not in sys.stdlib_module_names and name != "ugmm_vision"
    }
    optional = set().union(*extras.values())  # imported only by features that need an extra
    for name in sorted(third_party - _WITH_TORCH):
        dist = _IMPORT_TO_DIST.get(name, name).lower()
        assert dist in declared or dist in optional, f"{name} is imported but not a dependency or in an extra"
    assert {"onnx", "onnxruntime"} <= extras["export"]
