"""``lambdaserve synth``: ``cdk synth`` offline from the repository root, as ``make synth`` does."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from lambdaserve.views.console import err, fail

CDK = Path("node_modules") / ".bin" / "cdk"


def find_project_root(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        if (directory / "cdk.json").is_file():
            return directory
    return None


def synth(
    stage: Annotated[str, typer.Option("--stage", help="Stage from cdk.json context")] = "dev",
) -> None:
    """Synthesize the CDK app (all stacks) offline into ./cdk.out, with cdk-nag checks."""
    root = find_project_root(Path.cwd())
    if root is None:
        fail("no cdk.json here or above: run this from a lambdaserve checkout")
    if not (root / CDK).is_file():
        fail(f"the pinned CDK CLI is not installed: run `npm ci` in {root} (or `make synth`)")
    env = {
        **os.environ,
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_CLI_TELEMETRY": "1",
    }
    err.print(f"synthesizing stage {stage} in {root}/cdk.out", highlight=False)
    result = subprocess.run(
        [str(root / CDK), "synth", "--no-notices", "--quiet", "-c", f"stage={stage}"],
        cwd=root,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        fail("cdk synth failed (see above)", code=result.returncode)
