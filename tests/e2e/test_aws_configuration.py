"""An AWS user's first mistakes get one line that says what to do, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_no_region_is_one_line_that_names_the_fix(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"}
    }
    env |= {
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # never reached: the region is checked first
        "COLUMNS": "200",
    }
    command = [sys.executable, "-m", "lambdaserve.cli", "status", "churn", "--backend", "aws"]
    command += ["--function", "lambdaserve-predict"]

    done = subprocess.run(
        [*command, "--store", str(tmp_path / "store")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    output = done.stdout + done.stderr
    said = [line for line in output.strip().splitlines() if " INFO mlflow." not in line]
    assert done.returncode == 1
    assert "Traceback" not in output
    assert said == [
        "error: no AWS region is set for lambda: export AWS_REGION (or AWS_DEFAULT_REGION), or "
        "set `region` in ~/.aws/config"
    ]
