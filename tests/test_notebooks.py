"""Every tutorial notebook runs top to bottom, in the test suite's own Python, without writing where it runs.

Each notebook is executed with nbclient in a fresh kernel (kernel ``python3``; jupyter_client starts it with
the interpreter running the tests, so the notebooks see this virtualenv and its editable ``ugmm_vision``). The
working directory is an empty temporary folder that must still be empty afterwards: notebooks write only into
temporary folders they create, never next to themselves in the repository. A last cell appended to the executed
copy checks that the kernel ran in the tests' environment (``sys.prefix``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 600  # one cell; a whole notebook takes 30–80 s on 2 CPU cores, the four 3–5 minutes


def test_notebooks_exist_and_are_stored_without_outputs():
    assert [p.name for p in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_finetune_timm.ipynb",
        "03_calibration_and_ood.ipynb",
        "04_inside_the_neurons.ipynb",
    ]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        assert code, path.name
        assert all(not cell.outputs and cell.execution_count is None for cell in code), f"{path.name} has outputs"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path):
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.prefix, end='')"))
    before = sorted(p.name for p in NOTEBOOKS_DIR.iterdir())
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        startup_timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    print(f"{path.name}: {time.perf_counter() - start:.1f} s")

    (output,) = nb.cells[-1].outputs
    assert Path(output.text).resolve() == Path(sys.prefix).resolve()  # the kernel runs in this (virtual) env
    assert sorted(p.name for p in NOTEBOOKS_DIR.iterdir()) == before
    assert list(tmp_path.iterdir()) == [], "the notebook wrote into its working directory"
