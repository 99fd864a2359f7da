"""The README's ``save_model`` example runs as written and writes a bundle ``import`` accepts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from lambdaserve.kernel.bundle import verify_bundle

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_example_writes_a_verified_bundle(tmp_path: Path) -> None:
    section = README.read_text().split("## Bring your own model", 1)[1]
    (example,) = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "save_model" in b]
    subprocess.run([sys.executable, "-c", example], cwd=tmp_path, check=True, timeout=120)
    manifest = verify_bundle(tmp_path / "penguins-bundle").manifest
    assert manifest.name == "penguins" and manifest.task == "binary_classification"
    assert manifest.target == "sex" and manifest.metrics["roc_auc"] > 0.9
