"""The predict function's code asset: the handler and the runtime part of ``lambdaserve`` only.

An allow-list: the core, serving and the AWS adapters, and the local store's URI helper. The CLI,
training, datasets, registry (MLflow) and lifecycle use cases never run in the predict function,
and ``serving/background_server.py`` is the uvicorn runner of the demo and tests. A test proves
every first-party import inside the asset resolves within it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from layers.bytecode import compile_bytecode
from layers.errors import LayerBuildError

REPO_ROOT = Path(__file__).resolve().parents[1]
HANDLER_FILES = (
    "functions/__init__.py",
    "functions/predict/__init__.py",
    "functions/predict/handler.py",
)
PACKAGE = "lambdaserve"
INCLUDED = (
    "lambdaserve/__init__.py",
    "lambdaserve/py.typed",
    "lambdaserve/core",
    "lambdaserve/serving",
    "lambdaserve/aws",
    "lambdaserve/local/__init__.py",
    "lambdaserve/local/artifact_store.py",
)
EXCLUDED = frozenset({"lambdaserve/serving/background_server.py"})


def asset_sources(repo_root: Path = REPO_ROOT) -> list[str]:
    """Repo-relative paths of the source files the asset holds."""
    package = sorted(
        path.relative_to(repo_root).as_posix()
        for path in (repo_root / PACKAGE).rglob("*")
        if path.is_file() and path.suffix in {".py", ".typed"} and "__pycache__" not in path.parts
    )
    kept = [
        name
        for name in package
        if any(name == keep or name.startswith(f"{keep}/") for keep in INCLUDED)
        and name not in EXCLUDED
    ]
    return [*HANDLER_FILES, *kept]


def build_function_asset(output_dir: Path, *, repo_root: Path = REPO_ROOT) -> int:
    """Copy the predict function's code into ``output_dir``, compile its bytecode; return bytes."""
    if output_dir.exists() and any(output_dir.iterdir()):
        raise LayerBuildError(f"refusing to build the function asset into non-empty {output_dir}")
    for name in asset_sources(repo_root):
        target = output_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(repo_root / name, target)
    compile_bytecode(output_dir, runtime_path="/var/task")
    return sum(path.stat().st_size for path in output_dir.rglob("*") if path.is_file())
