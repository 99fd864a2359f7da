"""The shape every module we ship keeps (issue 12): modules of at most 300 lines, functions of at
most 60 (decorators excluded), Lambda handlers of at most 30. Complexity is ruff's C90 (≤ 12,
``make lint``); import direction is import-linter's. A file that outgrows a limit is split along a
real seam, not allowed more lines here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("lambdaserve", "functions", "training", "infra", "layers")
MODULE_LINES = 300
FUNCTION_LINES = 60
HANDLER_LINES = 30


def _sources() -> list[Path]:
    return sorted(p for package in SHIPPED for p in (ROOT / package).rglob("*.py"))


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_the_shipped_packages_are_all_read() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in _sources()}
    assert {"lambdaserve/kernel/bundle.py", "functions/predict/handler.py"} <= names
    assert {"training/train.py", "infra/app.py", "layers/function_asset.py"} <= names


def test_modules_stay_under_300_lines() -> None:
    long = {
        path.relative_to(ROOT).as_posix(): lines
        for path in _sources()
        if (lines := len(path.read_text().splitlines())) > MODULE_LINES
    }
    assert long == {}, f"split these along a real seam (limit {MODULE_LINES} lines)"


def test_functions_stay_under_60_lines() -> None:
    long = {
        f"{path.relative_to(ROOT).as_posix()}:{node.lineno} {node.name}": length
        for path in _sources()
        for node in _functions(ast.parse(path.read_text()))
        if (length := node.end_lineno - node.lineno + 1 if node.end_lineno else 0) > FUNCTION_LINES
    }
    assert long == {}, f"split these into named steps (limit {FUNCTION_LINES} lines)"


def test_lambda_handlers_stay_thin() -> None:
    handlers = sorted((ROOT / "functions").glob("*/handler.py"))
    assert [h.parent.name for h in handlers] == ["drift", "predict", "rollout"]
    sizes = {h.parent.name: len(h.read_text().splitlines()) for h in handlers}
    assert max(sizes.values()) <= HANDLER_LINES, sizes
