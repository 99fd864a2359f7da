"""checkov's findings on synthesized templates, each named by its construct path.

``scan`` runs ``infra/checkov_scan.py`` with the Python of ``.venv-checkov`` (checkov's own
environment: its pins conflict with the project's) and reads one finding per line. checkov
names a resource ``TYPE.LogicalId``; the cloud assembly beside the template (``manifest.json``
and the stack's metadata file) maps logical IDs to construct paths, which is what the
acknowledgement table names. Nothing here reaches the network: checkov runs offline with its
bundled checks.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Installed by the Makefile (``make test``, ``make synth``) from uv.lock's ``checkov`` group.
CHECKOV_PYTHON = REPO_ROOT / ".venv-checkov" / "bin" / "python"
SCANNER = Path(__file__).with_name("checkov_scan.py")
#: checkov's banner asks PyPI for a newer version and its platform client would fetch policy
#: metadata: neither, ever.
_OFFLINE = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}


class CheckovError(RuntimeError):
    """checkov is not installed, failed to run, or could not parse a template."""


@dataclass(frozen=True)
class Finding:
    check_id: str
    check_name: str
    path: str
    """Construct path (``lambdaserve-dev-serving/Predict/Resource``), else the logical ID."""
    resource: str
    """checkov's ``TYPE.LogicalId``."""
    template: str
    skipped: bool = False
    """Skipped by the template's own ``Metadata`` (``checkov: skip:``), not by the table."""

    def __str__(self) -> str:
        how = " (skipped in the template)" if self.skipped else ""
        return f"{self.check_id}{how} {self.check_name!r} on {self.path} ({self.resource})"


def scan(paths: Iterable[Path]) -> list[Finding]:
    """Every failed (or template-skipped) checkov check on ``paths``."""
    templates = [Path(path).resolve() for path in paths]
    if not CHECKOV_PYTHON.is_file():
        raise CheckovError(
            f"no checkov environment at {CHECKOV_PYTHON.parent.parent}: run `make test` or "
            "`make synth` (they install it from uv.lock's checkov group)"
        )
    done = subprocess.run(
        [str(CHECKOV_PYTHON), str(SCANNER), *map(str, templates)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **_OFFLINE},
    )
    if done.returncode != 0:
        raise CheckovError(f"checkov failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    unparsed = [line["file"] for line in lines if line["outcome"] == "unparsed"]
    if unparsed:
        raise CheckovError(f"checkov could not parse {unparsed}")
    paths_by_template = {template: construct_paths(template) for template in templates}
    return [_finding(line, paths_by_template) for line in lines]


def _finding(line: dict[str, Any], paths_by_template: dict[Path, dict[str, str]]) -> Finding:
    template = Path(line["file"]).resolve()
    logical_id = line["resource"].split(".", 1)[-1]
    return Finding(
        check_id=line["check_id"],
        check_name=line["check_name"],
        path=paths_by_template.get(template, {}).get(logical_id, logical_id),
        resource=line["resource"],
        template=template.name,
        skipped=line["outcome"] == "skipped",
    )


def construct_paths(template: Path) -> dict[str, str]:
    """Logical ID -> construct path (no leading slash) for a template of a cloud assembly;
    empty for a template outside one."""
    manifest = template.parent / "manifest.json"
    if not manifest.is_file():
        return {}
    for artifact in json.loads(manifest.read_text())["artifacts"].values():
        if artifact.get("properties", {}).get("templateFile") != template.name:
            continue
        metadata: dict[str, list[dict[str, Any]]] = dict(artifact.get("metadata", {}))
        if "additionalMetadataFile" in artifact:
            extra = template.parent / artifact["additionalMetadataFile"]
            metadata |= json.loads(extra.read_text())
        return {
            entry["data"]: path.lstrip("/")
            for path, entries in metadata.items()
            for entry in entries
            if entry["type"] == "aws:cdk:logicalId"
        }
    return {}
