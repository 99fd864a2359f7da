"""register → publish → status through the CLI: the AWS backend against moto's server (S3 with
versioning, IAM, Lambda) and the local backend; failures change nothing and exit non-zero."""

from __future__ import annotations

import io
import json
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lambdaserve.aws.clients import aws_client
from lambdaserve.cli.main import app
from lambdaserve.kernel.bundle import VerifiedBundle, sha256_file
from lambdaserve.local.artifact_store import LocalArtifactStore, path_from_uri
from lambdaserve.registry.mlflow_registry import MlflowRegistry
from tests.integration.moto_server import (
    closed_loopback_port,
    new_bucket,
    object_versions,
    running_moto_server,
)

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with running_moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(moto: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A versioned artifact bucket and a predict function, as the CDK stacks create them."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    s3, lam, iam = (aws_client(s, endpoint_url=moto) for s in ("s3", "lambda", "iam"))
    role = f"predict-{uuid.uuid4().hex[:8]}"
    arn = iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return event\n")
    function = f"lambdaserve-predict-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=function,
        Runtime="python3.13",
        Role=arn,
        Handler="handler.lambda_handler",
        Code={"ZipFile": code.getvalue()},
    )
    return {"s3": s3, "lambda": lam, "bucket": new_bucket(s3), "function": function}


@pytest.fixture
def store(tmp_path: Path, churn_bundle: VerifiedBundle, churn_hgb_bundle: VerifiedBundle) -> Path:
    local = LocalArtifactStore(tmp_path / "store")
    local.put(churn_bundle.path)  # churn bundle version 1
    local.put(churn_hgb_bundle.path)  # churn bundle version 2
    return local.root


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def register(store: Path, ref: str) -> dict[str, Any]:
    result = cli("register", ref, "--store", str(store), "--json")
    assert result.exit_code in (0, 3), result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def aws_args(aws: dict[str, Any]) -> list[str]:
    return ["--backend", "aws", "--function", aws["function"], "--bucket", f"s3://{aws['bucket']}"]


def published(aws: dict[str, Any]) -> list[dict[str, Any]]:
    versions = aws["lambda"].list_versions_by_function(FunctionName=aws["function"])["Versions"]
    return [v for v in versions if v["Version"] != "$LATEST"]


def test_publish_to_aws_uploads_pins_and_records(store: Path, aws: dict[str, Any]) -> None:
    registered = register(store, "churn:1")
    result = cli("publish", "churn:1", "--store", str(store), *aws_args(aws))
    assert result.exit_code == 0, result.output
    (version,) = published(aws)
    variables = version["Environment"]["Variables"]
    assert variables["MODEL_SHA256"] == registered["bundle_sha256"]
    assert variables["MODEL_URI"].startswith(f"s3://{aws['bucket']}/models/churn/1/bundle.tar.gz?")
    assert "versionId=" in variables["MODEL_URI"]
    assert "churn v1" in version["Description"]
    shown = json.loads(cli("models", "show", "churn:1", "--store", str(store)).stdout)
    assert shown["lambda_version"] == version["Version"]
    assert shown["tags"]["lambda_function"] == aws["function"]

    objects = object_versions(aws["s3"], aws["bucket"])
    again = cli("publish", "churn:1", "--store", str(store), *aws_args(aws))
    assert again.exit_code == 0 and "already published" in again.stdout
    assert len(published(aws)) == 1  # rerunning is a no-op
    assert object_versions(aws["s3"], aws["bucket"]) == objects


def test_status_flags_what_the_alias_does_not_match(store: Path, aws: dict[str, Any]) -> None:
    register(store, "churn:1")
    cli("models", "promote", "churn:1", "--store", str(store))
    status_args = ["--backend", "aws", "--function", aws["function"]]  # no --bucket: not used
    missing = cli("status", "churn", "--store", str(store), *status_args)
    assert missing.exit_code == 4
    assert "no 'live' alias yet: publishing the champion deploys it (lambdaserve publish " in (
        " ".join(missing.stdout.split())
    )
    deployed = cli("publish", "churn:1", "--store", str(store), *aws_args(aws))
    assert "first deployment: live now sends 100% to version 1" in deployed.stdout
    (version,) = published(aws)
    live = aws["lambda"].get_alias(FunctionName=aws["function"], Name="live")
    assert live["FunctionVersion"] == version["Version"]
    healthy = cli("status", "churn", "--store", str(store), *status_args)
    assert healthy.exit_code == 0, healthy.stdout
    assert "champion: v1" in healthy.stdout


def test_a_tampered_bundle_is_refused_before_anything_changes(
    store: Path, aws: dict[str, Any]
) -> None:
    register(store, "churn:1")
    archive = store / "models" / "churn" / "1" / "bundle.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    shutil.rmtree(store / ".cache", ignore_errors=True)
    result = cli("publish", "churn:1", "--store", str(store), *aws_args(aws))
    assert result.exit_code == 1
    assert "error:" in result.stderr and "Traceback" not in result.output
    assert published(aws) == []
    assert object_versions(aws["s3"], aws["bucket"]) == []


def test_a_missing_bundle_is_a_clear_error(store: Path, aws: dict[str, Any]) -> None:
    register(store, "churn:1")
    shutil.rmtree(store / "models" / "churn" / "1")
    result = cli("publish", "churn:1", "--store", str(store), *aws_args(aws))
    assert result.exit_code == 1
    assert "churn version 1 is not in" in result.stderr
    assert published(aws) == []


def test_an_unknown_registry_version_is_a_clear_error(store: Path, aws: dict[str, Any]) -> None:
    register(store, "churn:1")
    result = cli("publish", "churn:7", "--store", str(store), *aws_args(aws))
    assert result.exit_code == 1
    said = " ".join(result.stderr.split())
    assert "churn v7 is not in the registry (registered versions: 1)" in said
    assert published(aws) == []


def test_an_unreachable_registry_changes_nothing(
    store: Path, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDASERVE_REGISTRY_URI", f"http://127.0.0.1:{closed_loopback_port()}")
    result = cli("publish", "churn:1", "--store", str(store), *aws_args(aws))
    assert result.exit_code == 1
    assert "unreachable" in result.stderr
    assert published(aws) == []


def test_aws_backend_needs_its_function_and_bucket(store: Path) -> None:
    result = runner.invoke(app, ["publish", "churn:1", "--store", str(store), "--backend", "aws"])
    assert result.exit_code == 2
    assert "--function" in result.output


def test_local_backend_publishes_the_same_contract(store: Path) -> None:
    register(store, "churn:1")
    second = register(store, "churn:2")
    for ref in ("churn:1", "churn:2", "churn:2"):
        assert cli("publish", ref, "--store", str(store)).exit_code == 0
    state = json.loads((store / "functions" / "predict.json").read_text())
    assert [v["version"] for v in state["versions"]] == ["1", "2"]
    pinned = state["versions"][1]["environment"]
    assert pinned["MODEL_SHA256"] == second["bundle_sha256"]
    assert path_from_uri(pinned["MODEL_URI"]).is_file()


def test_publishing_a_version_that_is_not_champion_deploys_nothing(
    store: Path, aws: dict[str, Any]
) -> None:
    register(store, "churn:1")
    result = cli("publish", "churn:1", "--store", str(store), *aws_args(aws))
    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())
    assert "note: live serves no model yet; it is deployed when the champion is published" in said
    assert "first deployment" not in said
    aliases = aws["lambda"].list_aliases(FunctionName=aws["function"])["Aliases"]
    assert aliases == []


def test_an_archive_replaced_after_registration_is_refused_unopened(
    store: Path, aws: dict[str, Any]
) -> None:
    """The registry records the archive's sha256; publishing checks it before reading a member
    (before, the swapped archive was unpacked, and only the manifest digest caught it)."""
    register(store, "churn:1")
    archive = store / "models" / "churn" / "1" / "bundle.tar.gz"
    recorded = MlflowRegistry.for_store(store).get("churn", "1").archive_sha256
    assert recorded == sha256_file(archive)
    shutil.copyfile(store / "models" / "churn" / "2" / "bundle.tar.gz", archive)
    shutil.rmtree(store / ".cache", ignore_errors=True)

    result = cli("publish", "churn:1", "--store", str(store), *aws_args(aws))

    assert result.exit_code == 1
    said = " ".join(result.stderr.split())
    assert "was replaced after registration and was not opened" in said
    assert not list((store / ".cache").glob("**/bundle-*")), "nothing was unpacked"
    assert published(aws) == []
