"""Export every pinned requirement file from ``uv.lock``: one resolution, no second list.

The dev venv, CI and the demo install from ``uv.lock`` with ``uv sync --locked``. The Lambda
layers and the SageMaker job install with pip from requirement files, so those files are
*exported* from the same lock (exact pins with every artifact's sha256) and committed:

- ``layers/requirements/NAME.txt``: the closure of the ``layer-NAME`` dependency group, minus
  what the layers it is deployed on top of already ship;
- ``training/requirements.txt``: the closure of the project's dependencies and its ``training``
  extra, which script mode pip-installs over AWS's scikit-learn image.

``make lock`` runs ``uv lock`` then ``python -m layers.lock_export``; ``make lint`` and a test run
``python -m layers.lock_export --check``, which fails when a committed file differs from what the
lock exports now.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCK = REPO_ROOT / "uv.lock"
REQUIREMENTS_DIR = REPO_ROOT / "layers" / "requirements"
TRAINING_REQUIREMENTS = REPO_ROOT / "training" / "requirements.txt"
#: Where ``make`` installs its pinned uv; ``$UV`` or ``uv`` on PATH otherwise.
LOCAL_UV = REPO_ROOT / ".uv" / "bin" / "uv"
UV_ENV = "UV"

#: Layer name -> the layers it is deployed on top of (their packages are not repeated in it).
LAYER_BASES: dict[str, tuple[str, ...]] = {
    "serving-base": (),
    "onnx": ("serving-base",),
    "sklearn": ("serving-base",),
    "dataframe": ("serving-base", "sklearn"),
    "drift": ("serving-base",),
}
_HEADER = (
    "# Exported from uv.lock by `make lock` (python -m layers.lock_export): do not edit.\n"
    "# {what}\n"
)
_WHAT = {
    "serving-base": "Layer serving-base: the predict function's web stack and its closure. "
    "boto3 is in no layer: the python3.13 runtime provides it.",
    "onnx": "Layer onnx: ONNX Runtime and its closure, minus what serving-base ships.",
    "sklearn": "Layer sklearn: the scikit-learn fallback (skops-loaded models) and its closure, "
    "minus what serving-base ships.",
    "dataframe": "Layer dataframe: pandas, for a stage whose scikit-learn bundles take a "
    "DataFrame (dataframe_inputs), minus what serving-base and sklearn ship.",
    "drift": "Layer drift: SciPy for the drift job's statistics, minus what serving-base ships.",
}


class LockExportError(RuntimeError):
    """uv is missing, or it could not export the lock."""


def layer_requirements(name: str) -> Path:
    return REQUIREMENTS_DIR / f"{name}.txt"


def find_uv() -> str:
    """The uv that ``make`` pinned, else ``$UV``, else ``uv`` on PATH."""
    for candidate in (os.environ.get(UV_ENV), str(LOCAL_UV), shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise LockExportError("no uv found: run `make test` (it installs the pinned uv into .uv/)")


def _uv_export(uv: str, *options: str) -> str:
    command = [uv, "export", "--frozen", "--no-emit-project", "--no-annotate", "--no-header"]
    done = subprocess.run(
        [*command, *options], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise LockExportError(f"uv export {' '.join(options)} failed: {done.stderr.strip()}")
    return done.stdout


def _names(exported: str) -> list[str]:
    """Project names of an exported requirement file (the line that starts each entry)."""
    return [
        line.split("==", 1)[0]
        for line in exported.splitlines()
        if line and not line[0].isspace() and not line.startswith("#")
    ]


def _base_closure(uv: str, name: str) -> list[str]:
    names: list[str] = []
    for base in LAYER_BASES[name]:
        names += _base_closure(uv, base)
        names += _names(_uv_export(uv, "--no-hashes", "--only-group", f"layer-{base}"))
    return sorted(set(names))


def export_layer(name: str, uv: str | None = None) -> str:
    uv = uv or find_uv()
    skip = [option for base in _base_closure(uv, name) for option in ("--no-emit-package", base)]
    body = _uv_export(uv, "--only-group", f"layer-{name}", *skip)
    return _HEADER.format(what=_WHAT[name]) + body


def export_training(uv: str | None = None) -> str:
    body = _uv_export(uv or find_uv(), "--no-default-groups", "--extra", "training")
    what = (
        "The SageMaker job's requirements: the project's dependencies and its training extra, "
        "which script mode pip-installs over AWS's scikit-learn image (Python 3.12)."
    )
    return _HEADER.format(what=what) + body


@dataclass(frozen=True)
class Export:
    path: Path
    text: str

    @property
    def current(self) -> bool:
        return self.path.is_file() and self.path.read_text() == self.text


def exports(uv: str | None = None) -> list[Export]:
    """What every exported file must hold, given the lock as it is now."""
    uv = uv or find_uv()
    files = [Export(layer_requirements(name), export_layer(name, uv)) for name in LAYER_BASES]
    return [*files, Export(TRAINING_REQUIREMENTS, export_training(uv))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m layers.lock_export", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when a file is stale"
    )
    args = parser.parse_args(argv)
    try:
        wanted = exports()
    except LockExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    stale = [export for export in wanted if not export.current]
    if args.check:
        for export in stale:
            print(
                f"{_shown(export.path)} differs from what uv.lock exports: run `make lock`",
                file=sys.stderr,
            )
        return 1 if stale else 0
    for export in stale:
        export.path.write_text(export.text)
        print(f"wrote {_shown(export.path)}")
    return 0


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)


if __name__ == "__main__":
    raise SystemExit(main())
