"""The package's import graph: no cycle, no import of another package's private module, no oversized module.

The graph is read from the source with :mod:`ast`, without importing anything. Every ``import`` and
``from ... import`` statement counts, wherever it sits: at module level, inside a function, or under
``if TYPE_CHECKING:``. A function-level import is still a dependency (it only moves the circle from import time to
call time and hides it from the reader), so it counts for the cycle test too. ``from pkg import name`` is an edge to
``pkg.name`` when that is a module, else to ``pkg``. An import of a package also imports its ``__init__``, so
``a.b.c`` depends on ``a.b`` and ``a`` as well — but a module is never said to depend on the packages above
itself (Python imports those first, by construction), so only edges from imports written in the source count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ugmm_vision

ROOT = Path(ugmm_vision.__file__).parent
PACKAGE = "ugmm_vision"
MAX_LINES = 350


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package under its own name, for its ``__init__.py``)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute name a ``from`` import refers to, relative imports resolved against ``module``."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> set[str]:
    """The package's modules that ``module`` imports anywhere in its source."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            for alias in node.names:
                child = f"{source}.{alias.name}"
                targets.add(child if child in MODULES else source)
    edges = set()
    for target in targets:
        while target and target not in MODULES and "." in target:
            target = target.rsplit(".", 1)[0]  # `import a.b.C`-style names: the deepest module that exists
        if target in MODULES and target != module and target.startswith(PACKAGE):
            edges.add(target)
    return edges


GRAPH = {module: _imports(module) for module in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan), as a path that closes."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _owner(module: str) -> str:
    """The package a module belongs to (a package's ``__init__`` belongs to the package itself)."""
    return module if _is_package(module) else module.rsplit(".", 1)[0]


def test_graph_is_read() -> None:
    assert "ugmm_vision.functional.ugmm" in MODULES
    assert "ugmm_vision.checks" in GRAPH["ugmm_vision.functional.calibration"]


def test_no_import_cycle() -> None:
    cycles = _cycles(GRAPH)
    described = [
        " ; ".join(f"{a} -> {b}" for a in component for b in sorted(GRAPH[a]) if b in component) for component in cycles
    ]
    assert not cycles, "import cycles among ugmm_vision modules:\n" + "\n".join(described)


def test_no_private_module_imported_from_another_package() -> None:
    offenders = []
    for module, targets in GRAPH.items():
        for target in targets:
            private = [i for i, part in enumerate(target.split(".")) if part.startswith("_")]
            if not private:
                continue
            home = ".".join(target.split(".")[: private[0]])  # the package the private part lives in
            if not (module == home or module.startswith(home + ".")):
                offenders.append(f"{module} imports {target}")
    assert not offenders, "imports of another package's private module:\n" + "\n".join(sorted(offenders))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_over_350_lines(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module].relative_to(ROOT.parent)} has {lines} lines (limit {MAX_LINES})"
