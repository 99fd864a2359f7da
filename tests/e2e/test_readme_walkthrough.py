"""The README's walkthrough, run exactly as written: every command line of its two blocks, in
order, on the local backend and on the AWS backend against moto's server (a CDK-shaped
deployment: the predict function with ``live`` on a bootstrap version that serves no model).

Before the first-deployment fix, the local block stopped at ``status`` ("no 'live' alias") and
the AWS one at ``rollout start`` ("finish or roll back the current rollout first")."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lambdaserve.aws.clients import aws_client
from lambdaserve.cli.main import app
from lambdaserve.datasets import churn
from tests.integration.moto_server import (
    handler_zip,
    lambda_role,
    new_bucket,
    running_moto_server,
)

pytestmark = pytest.mark.e2e
README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough(backend: str) -> list[str]:
    """The command lines of the README's ``<!-- walkthrough:BACKEND -->`` block."""
    text = README.read_text()
    match = re.search(rf"<!-- walkthrough:{backend} -->\n```bash\n(.*?)```", text, re.S)
    assert match, f"README.md has no walkthrough:{backend} block"
    return [line for line in match.group(1).splitlines() if line.strip()]


def run(lines: list[str], env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Run each ``lambdaserve`` line in process; ``export`` lines set the environment."""
    runner = CliRunner()
    said = []
    for line in lines:
        words = shlex.split(line, comments=True)
        if words[0] == "export":
            for assignment in words[1:]:
                key, _, value = assignment.partition("=")
                os.environ[key] = (env or {}).get(key, value)
            continue
        assert words[0] == "lambdaserve", line
        result = runner.invoke(app, words[1:], catch_exceptions=False)
        assert result.exit_code == 0, f"{line}\n{result.output}"
        said.append((line, " ".join(result.output.split())))
    return said


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory holding the user's two CSVs; the store defaults to ./.lambdaserve."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LAMBDASERVE_HOME", raising=False)
    churn.write_churn_csv(tmp_path / "customers.csv", 1500, seed=3)
    churn.write_churn_csv(tmp_path / "holdout.csv", 500, seed=4)
    return tmp_path


def output_of(said: list[tuple[str, str]], start: str) -> list[str]:
    return [out for line, out in said if line.startswith(start)]


def test_the_local_walkthrough_deploys_the_champion_then_canaries_the_challenger(
    workdir: Path,
) -> None:
    said = run(walkthrough("local"))

    first, second = output_of(said, "lambdaserve publish")
    assert "first deployment: live now sends 100% to version 1 (champion churn v1)" in first
    assert "first deployment" not in second
    before, after = output_of(said, "lambdaserve status churn")
    assert "│ 1 │ 100% │ 1 │ champion │" in before
    assert "│ 2 │ 100% │ 2 │ champion │" in after
    (resumed,) = output_of(said, "lambdaserve rollout resume")
    assert "(promoted)" in resumed


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """What the stacks leave: a versioned artifact bucket, and the predict function whose live
    alias points at a published bootstrap version that pins no model."""
    with running_moto_server() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        s3, lam, iam = (aws_client(s, endpoint_url=endpoint) for s in ("s3", "lambda", "iam"))
        function = "lambdaserve-dev-predict"
        lam.create_function(
            FunctionName=function,
            Runtime="python3.13",
            Role=lambda_role(iam, "predict"),
            Handler="handler.lambda_handler",
            Code={"ZipFile": handler_zip()},
        )
        bootstrap = lam.publish_version(FunctionName=function)["Version"]
        lam.create_alias(FunctionName=function, Name="live", FunctionVersion=bootstrap)
        for key in ("LAMBDASERVE_FUNCTION", "LAMBDASERVE_ARTIFACT_BUCKET"):
            monkeypatch.delenv(key, raising=False)  # the walkthrough's export sets them
        yield {
            "LAMBDASERVE_FUNCTION": function,
            "LAMBDASERVE_ARTIFACT_BUCKET": f"s3://{new_bucket(s3)}",
        }
        for key in ("LAMBDASERVE_FUNCTION", "LAMBDASERVE_ARTIFACT_BUCKET"):
            os.environ.pop(key, None)


def test_the_aws_walkthrough_moves_live_off_the_bootstrap_version(
    workdir: Path, deployment: dict[str, str]
) -> None:
    said = run(walkthrough("aws"), env=deployment)

    first, second = output_of(said, "lambdaserve publish")
    assert "first deployment: live now sends 100% to version 2 (champion churn v1)" in first
    assert "first deployment" not in second
    before, after = output_of(said, "lambdaserve status churn")
    assert "│ 2 │ 100% │ 1 │ champion │" in before  # function version 2: 1 is the bootstrap
    assert "│ 3 │ 100% │ 2 │ champion │" in after
    (resumed,) = output_of(said, "lambdaserve rollout resume")
    assert "(promoted)" in resumed
