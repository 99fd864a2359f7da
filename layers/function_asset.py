"""The functions' code assets: each handler and the runtime part of ``lambdaserve`` it needs.

Each asset is its handler's first-party import closure: exactly the modules it imports
(directly or through each other, function-level imports included), with their packages'
``__init__.py``. So the predict asset holds the kernel, serving, the composition root of the
predict function and the AWS adapters it uses, and nothing of the local backend, the CLI,
training, the registry, rollouts or drift (import-linter keeps serving off the local backend);
the rollout and drift assets hold nothing of the web app, the predictors or the CLI. Tests prove
every first-party import inside an asset resolves within it.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Callable
from pathlib import Path

from layers.bytecode import compile_bytecode
from layers.errors import LayerBuildError

REPO_ROOT = Path(__file__).resolve().parents[1]
PREDICT_HANDLER = "functions/predict/handler.py"
ROLLOUT_HANDLER = "functions/rollout/handler.py"
DRIFT_HANDLER = "functions/drift/handler.py"
FIRST_PARTY = frozenset({"lambdaserve", "functions"})


def import_closure(entry: str, repo_root: Path = REPO_ROOT) -> list[str]:
    """Repo-relative paths of ``entry`` and every first-party module it imports, transitively,
    plus the ``__init__.py`` of every package on the way."""
    found: set[str] = set()
    pending = [entry]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.add(name)
        parts = Path(name).parts
        pending += [
            f"{Path(*parts[:depth]).as_posix()}/__init__.py" for depth in range(1, len(parts))
        ]
        for module, required in _imported_modules(repo_root / name):
            if module.split(".")[0] not in FIRST_PARTY:
                continue
            path = _module_path(module, repo_root)
            if path is not None:
                pending.append(path)
            elif required:
                raise LayerBuildError(f"{name} imports {module}, which is not in the repo")
    return sorted(found)


def _imported_modules(source: Path) -> list[tuple[str, bool]]:
    """(module, required) for every import; ``from package import name`` may name a module."""
    modules = []
    for node in runtime_nodes(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            modules += [(alias.name, True) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level or node.module is None:
                raise LayerBuildError(f"{source}: function code uses absolute imports only")
            modules.append((node.module, True))
            modules += [(f"{node.module}.{alias.name}", False) for alias in node.names]
    return modules


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:``, which never run."""
    nodes, pending = [], [tree]
    while pending:
        node = pending.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending += node.orelse
            continue
        pending += ast.iter_child_nodes(node)
    return nodes


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_path(module: str, repo_root: Path) -> str | None:
    base = Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if (repo_root / candidate).is_file():
            return candidate.as_posix()
    return None


#: Where a stage's ``custom_code`` lands in the predict asset (``CODE_DIRS`` on Lambda).
CUSTOM_CODE_DIR = "custom_code"
_NOT_CODE = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", ".*")


def copy_custom_code(source: Path, output_dir: Path) -> list[str]:
    """The user's top-level modules and packages of ``source`` into ``output_dir/custom_code``;
    answer their names. Nothing else of ``source`` (data, notebooks, models) is copied."""
    if not source.is_dir():
        raise LayerBuildError(f"custom_code path {source} is not a directory")
    target = output_dir / CUSTOM_CODE_DIR
    names = []
    for path in sorted(source.iterdir()):
        if path.suffix == ".py" and path.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / path.name)
        elif (path / "__init__.py").is_file():
            shutil.copytree(path, target / path.name, ignore=_NOT_CODE)
        else:
            continue
        names.append(path.stem)
    if not names:
        raise LayerBuildError(f"custom_code path {source} holds no Python module or package")
    return names


def _copy_asset(
    names: list[str], output_dir: Path, repo_root: Path, custom_code: Path | None = None
) -> int:
    if output_dir.exists() and any(output_dir.iterdir()):
        raise LayerBuildError(f"refusing to build the function asset into non-empty {output_dir}")
    for name in names:
        target = output_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(repo_root / name, target)
    if custom_code is not None:
        copy_custom_code(custom_code, output_dir)
    compile_bytecode(output_dir, runtime_path="/var/task")
    return sum(path.stat().st_size for path in output_dir.rglob("*") if path.is_file())


def build_function_asset(
    output_dir: Path, *, repo_root: Path = REPO_ROOT, custom_code: Path | None = None
) -> int:
    """Copy the predict function's code (its import closure, plus the stage's ``custom_code``)
    into ``output_dir``, compile its bytecode; return bytes."""
    closure = import_closure(PREDICT_HANDLER, repo_root)
    return _copy_asset(closure, output_dir, repo_root, custom_code)


def build_rollout_asset(output_dir: Path, *, repo_root: Path = REPO_ROOT) -> int:
    """Copy the rollout function's code (its import closure) into ``output_dir``; return bytes."""
    return _copy_asset(import_closure(ROLLOUT_HANDLER, repo_root), output_dir, repo_root)


def build_drift_asset(output_dir: Path, *, repo_root: Path = REPO_ROOT) -> int:
    """Copy the drift function's code (its import closure) into ``output_dir``; return bytes."""
    return _copy_asset(import_closure(DRIFT_HANDLER, repo_root), output_dir, repo_root)


#: Function name -> the builder of its code asset.
FUNCTION_ASSETS: dict[str, Callable[[Path], int]] = {
    "predict": build_function_asset,
    "rollout": build_rollout_asset,
    "drift": build_drift_asset,
}
