"""AWS's scikit-learn framework image, as far as the training job depends on it.

The stack runs the job on ``sagemaker-scikit-learn:1.4-2-py312-cpu-py3`` (infra/stacks/
training_stack.py). Its Python is 3.12, not the 3.13 we serve with, so the job's code stays
3.12-compatible (DESIGN decision 1) and a test runs it on a local Python 3.12 through the same
SageMaker training toolkit, over the same pre-installed packages (``framework-image.txt``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = "3.12"
PREINSTALLED = REPO_ROOT / "training" / "framework-image.txt"
#: Where ``make test`` puts the image's and the job's Python 3.12 wheels, under the wheelhouse.
WHEELHOUSE_SUBDIR = "py312"
PYTHON_ENV = "LAMBDASERVE_PYTHON312"


def _runs(candidate: str | Path) -> bool:
    try:
        done = subprocess.run(
            [str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.strip() == PYTHON


def find_python() -> Path | None:
    """A Python 3.12 interpreter: ``$LAMBDASERVE_PYTHON312``, ``python3.12`` on PATH, or pyenv's."""
    candidates: list[str | Path] = []
    if os.environ.get(PYTHON_ENV):
        candidates.append(os.environ[PYTHON_ENV])
    if found := shutil.which(f"python{PYTHON}"):
        candidates.append(found)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(pyenv_root.glob(f"versions/{PYTHON}.*/bin/python{PYTHON}"), reverse=True)
    return next((Path(c) for c in candidates if _runs(c)), None)
