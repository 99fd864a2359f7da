"""What code produced a registration: the package version plus the git commit when known."""

from __future__ import annotations

import subprocess

import lambdaserve


def code_version() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"lambdaserve {lambdaserve.__version__}" + (f" ({commit})" if commit else "")
