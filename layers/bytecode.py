"""Ship bytecode compiled by Python 3.13, as the python3.13 runtime would compile it.

Lambda's code directories are read-only, so without ``__pycache__`` the runtime recompiles every
module on every cold start (measured: three times slower). ``unchecked-hash`` pycs do not depend
on file mtimes, which zip archives and CDK asset staging do not preserve.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from layers.errors import LayerBuildError

RUNTIME_PYTHON = (3, 13)


def compile_bytecode(root: Path, *, runtime_path: str) -> None:
    """``python -m compileall -q -j 1 --invalidation-mode unchecked-hash root`` with Python 3.13.

    ``runtime_path`` (``/opt/python`` for a layer, ``/var/task`` for the function) replaces
    ``root`` in the file names recorded in the bytecode, so builds are byte-for-byte reproducible
    (the asset hash changes only when the contents do) and tracebacks name Lambda's paths.
    """
    if sys.version_info[:2] != RUNTIME_PYTHON:
        found = ".".join(map(str, sys.version_info[:3]))
        raise LayerBuildError(
            f"bytecode for the python3.13 runtime must be compiled by Python 3.13; "
            f"this build runs on {found} ({sys.executable})"
        )
    # One worker: with a process pool (-j 0) a pyc's marshal bytes depend on which worker
    # compiled it (measured: 1 of 2,900 sklearn pycs differed between two builds); serial costs
    # ~1 s more on the largest layer and makes the output reproducible.
    command = [sys.executable, "-m", "compileall", "-q", "-j", "1"]
    command += ["--invalidation-mode", "unchecked-hash", "-s", str(root), "-p", runtime_path]
    command.append(str(root))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-2000:]
        raise LayerBuildError(f"compileall failed below {root}: {output}")
