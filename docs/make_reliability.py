"""Write docs/reliability.md: every bad input the test suite tries, and what it gets, read from the tests themselves.

Usage::

    python docs/make_reliability.py          # rewrite docs/reliability.md
    python docs/make_reliability.py --check  # exit 1 if docs/reliability.md is out of date

The tests are read with ``ast`` (nothing is imported or run): each test's name, the first paragraph of its
docstring ("bad input → what it gets"), the exception it expects (``pytest.raises``), and its parametrized cases
(``pytest.param(..., id=...)`` ids, ``ids=[...]``, or the first value of each case). ``tests/test_docs_reliability``
checks that the file is current.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "reliability.md"
RELIABILITY_TESTS = "tests/reliability"
ORDER = [  # sections in this order; other test files of the folder follow, sorted
    "test_arguments.py",
    "test_inputs.py",
    "test_numerics.py",
    "test_nan_guard.py",
    "test_data_safety.py",
    "test_checkpoints.py",
    "test_atomic_writes.py",
    "test_lost_data.py",  # the second pass (issue 17): four sections
    "test_metric_inputs.py",
    "test_named_errors.py",
    "test_adversarial_pass.py",
]
ELSEWHERE = [  # argument and data checks that were tested before the reliability suite: listed, not duplicated
    "tests/layers/test_ugmm_layer.py::test_bad_arguments",
    "tests/layers/test_ugmm_layer.py::test_high_dropout_never_nan",
    "tests/heads/test_heads.py::test_bad_arguments_name_the_argument",
    "tests/heads/test_heads.py::test_per_layer_dropout_and_wrong_count",
    "tests/backbones/test_backbones.py::test_bad_arguments",
    "tests/backbones/test_backbones.py::test_unknown_timm_name_suggests_close_names",
    "tests/backbones/test_backbones.py::test_missing_weights_file_is_a_clear_error",
    "tests/backbones/test_flatten.py::test_invalid_arguments_name_the_argument",
    "tests/models/test_classifier.py::test_bad_arguments",
    "tests/functional/test_ugmm.py::test_bad_shapes_name_the_argument",
    "tests/functional/test_ugmm.py::test_finite_for_extreme_inputs_and_tiny_sigma",
    "tests/functional/test_ugmm.py::test_mixing_dropout_identity_in_eval_and_bad_p",
    "tests/data/test_digits.py::test_bad_arguments",
    "tests/data/test_torchvision_sets.py::test_bad_arguments",
    "tests/data/test_image_folder.py::test_bad_folders",
    "tests/test_cli.py::test_unknown_config_key_is_rejected",
    "tests/report/test_io.py::test_interrupted_write_keeps_previous_file_and_removes_temporary",
    "tests/report/test_io.py::test_bad_arguments_name_them",
]
MAX_CASE = 60


def _short(text: str, limit: int = MAX_CASE, code: bool = True) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    text = text.replace("`", "'") if code else text  # a code span cannot hold a backtick
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _case_text(node: ast.expr) -> str:
    if isinstance(node, ast.Lambda):
        node = node.body
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _short(node.value)
    return _short(ast.unparse(node))


def _cases(func: ast.FunctionDef) -> list[str]:
    """One label per parametrized case (several parametrize decorators: listed one after the other)."""
    labels: list[str] = []
    for deco in func.decorator_list:
        if not (isinstance(deco, ast.Call) and ast.unparse(deco.func).endswith("parametrize")):
            continue
        values = deco.args[1] if len(deco.args) > 1 else None
        ids = next((kw.value for kw in deco.keywords if kw.arg == "ids"), None)
        if isinstance(ids, (ast.List, ast.Tuple)):
            labels += [_short(ast.literal_eval(e)) for e in ids.elts]
            continue
        if not isinstance(values, (ast.List, ast.Tuple)):
            continue
        for value in values.elts:
            if isinstance(value, ast.Call) and ast.unparse(value.func).endswith("param"):
                given_id = next((kw.value for kw in value.keywords if kw.arg == "id"), None)
                labels.append(_short(ast.literal_eval(given_id)) if given_id else _case_text(value.args[0]))
            else:
                labels.append(_case_text(value.elts[0] if isinstance(value, ast.Tuple) else value))
    return labels


def _raises(func: ast.FunctionDef) -> str:
    """The exception types the test expects, from ``pytest.raises(...)`` and ``xfail(raises=...)``."""
    found: list[str] = []
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "pytest.raises" and node.args:
            name = ast.unparse(node.args[0])
            if name[:1].isupper() and name not in found:
                found.append(name)
    for deco in func.decorator_list:  # parametrized exception types: (factory, ValueError, match) tuples
        if isinstance(deco, ast.Call) and ast.unparse(deco.func).endswith("parametrize") and len(deco.args) > 1:
            for value in getattr(deco.args[1], "elts", []):
                for item in getattr(value, "elts", []):
                    name = ast.unparse(item)
                    if re.fullmatch(r"[A-Z]\w*(Error|Exception)", name) and name not in found:
                        found.append(name)
    return ", ".join(found) or "—"


def _summary(func: ast.FunctionDef) -> str:
    doc = ast.get_docstring(func)
    text = _short(doc.split("\n\n")[0], limit=400, code=False) if doc else func.name[5:].replace("_", " ")
    for deco in func.decorator_list:
        if isinstance(deco, ast.Call) and ast.unparse(deco.func).endswith("xfail"):
            reason = next((ast.literal_eval(kw.value) for kw in deco.keywords if kw.arg == "reason"), "")
            text += f" **Known gap (xfail):** {_short(reason, limit=400, code=False)}"
    return text


def _tests(path: Path, names: list[str] | None = None) -> list[ast.FunctionDef]:
    module = ast.parse(path.read_text(encoding="utf-8"))
    funcs = [n for n in module.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    if names is None:
        return funcs
    by_name = {f.name: f for f in funcs}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise SystemExit(f"make_reliability.py: {path.relative_to(ROOT)} has no test {missing}; update ELSEWHERE")
    return [by_name[n] for n in names]


def _table(rows: list[tuple[str, ast.FunctionDef]]) -> list[str]:
    lines = ["| Bad input → what it gets | Raises | Cases | Test |", "| --- | --- | --- | --- |"]
    for where, func in rows:
        cases = "; ".join(f"`{c}`" for c in _cases(func)) or "—"
        lines.append(f"| {_summary(func)} | {_raises(func)} | {cases} | `{where}::{func.name}` |")
    return lines


def render() -> str:
    """The Markdown of docs/reliability.md."""
    out = [
        "# Reliability: bad inputs and what they get",
        "",
        "Generated by `python docs/make_reliability.py` from the tests (names, docstrings, `pytest.raises`, "
        "parametrized cases); `tests/reliability/test_docs.py` fails when this file is out of date. "
        "Every row is a test that passes in the default suite (an `xfail` row marks a known gap).",
        "",
    ]
    paths = sorted((ROOT / RELIABILITY_TESTS).glob("test_*.py"))
    paths.sort(key=lambda p: ORDER.index(p.name) if p.name in ORDER else len(ORDER))
    for path in paths:
        module = ast.parse(path.read_text(encoding="utf-8"))
        doc = " ".join((ast.get_docstring(module) or path.stem).split("\n\n")[0].split())
        title, _, intro = doc.partition(": ")
        funcs = _tests(path)
        if not funcs:
            continue
        where = f"`{path.relative_to(ROOT)}`"
        out += [f"## {title}", "", f"{intro[:1].upper()}{intro[1:]} ({where})" if intro else where, ""]
        out += [*_table([(path.name, f) for f in funcs]), ""]
    rows: list[tuple[str, ast.FunctionDef]] = []
    for spec in ELSEWHERE:
        file, name = spec.split("::")
        rows += [(file, f) for f in _tests(ROOT / file, [name])]
    out += ["## Checks tested elsewhere in the suite", "", *_table(rows), ""]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run python docs/make_reliability.py")
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
