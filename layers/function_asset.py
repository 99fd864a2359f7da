"""The predict function's code asset: the handler and the runtime part of ``lambdaserve`` only.

The CLI, the training job and the datasets (pandas, skl2onnx, typer) never run on Lambda, and
``serving/background_server.py`` is the uvicorn runner of the demo and tests.
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
EXCLUDED = frozenset(
    {
        "lambdaserve/cli",
        "lambdaserve/training",
        "lambdaserve/datasets",
        "lambdaserve/local/training_runner.py",
        "lambdaserve/serving/background_server.py",
    }
)


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
        if not any(name == skip or name.startswith(f"{skip}/") for skip in EXCLUDED)
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
