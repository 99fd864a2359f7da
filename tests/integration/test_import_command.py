"""``lambdaserve import``: the SageMaker job's ``model.tar.gz`` from S3 (moto's server on
127.0.0.1) into the store and the registry; bad input refused with the store left as it was."""

from __future__ import annotations

import json
import shutil
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lambdaserve.aws.clients import aws_client
from lambdaserve.cli.main import app
from lambdaserve.kernel.bundle import VerifiedBundle, seal_bundle

pytestmark = pytest.mark.integration

BUCKET = "lambdaserve-dev-artifacts-123456789012"


Upload = Callable[[Path, str], str]


@pytest.fixture
def s3_uri(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Upload:
    """Upload a directory as SageMaker uploads /opt/ml/model; return a function giving its URI."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    s3 = aws_client("s3", endpoint_url=moto_endpoint)
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)

    def upload(model_dir: Path, job: str) -> str:
        archive = tmp_path / f"{job}-model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(model_dir, arcname=".")
        key = f"training-output/{job}/output/model.tar.gz"
        s3.upload_file(str(archive), BUCKET, key)
        return f"s3://{BUCKET}/{key}"

    return upload


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def stored_versions(store: Path) -> list[str]:
    return sorted(p.name for p in (store / "models" / "churn").glob("[!.]*"))


def stored_archive(store: Path, version: str) -> bytes:
    return (store / "models" / "churn" / version / "bundle.tar.gz").read_bytes()


def test_the_jobs_model_tar_gz_is_stored_and_registered_once(
    s3_uri: Upload, churn_bundle: VerifiedBundle, tmp_path: Path
) -> None:
    uri = s3_uri(churn_bundle.path, "churn-job-1")
    store = tmp_path / "store"

    code, output = run("import", uri, "--store", str(store), "--json")
    assert code == 0, output
    result = json.loads(output.strip().splitlines()[-1])
    assert result["bundle_sha256"] == churn_bundle.digest
    assert result["version"] == churn_bundle.manifest.version
    assert result["registry"]["version"] == "1"

    again, output = run("import", uri, "--store", str(store))
    assert again == 0, output
    assert "already stored (same digest)" in output
    assert stored_versions(store) == [churn_bundle.manifest.version]
    code, output = run("models", "show", "churn:1", "--store", str(store))
    assert code == 0, output
    assert json.loads(output)["bundle_sha256"] == churn_bundle.digest
    assert run("models", "show", "churn:2", "--store", str(store))[0] == 1  # registered once


def test_another_bundle_under_a_stored_version_is_refused(
    s3_uri: Upload, churn_bundle: VerifiedBundle, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    assert run("import", s3_uri(churn_bundle.path, "job-a"), "--store", str(store))[0] == 0
    other_dir = tmp_path / "other"
    shutil.copytree(churn_bundle.path, other_dir)
    other = seal_bundle(
        other_dir,
        churn_bundle.manifest.model_copy(update={"created_at": datetime(2026, 1, 2, tzinfo=UTC)}),
    )
    archive_before = stored_archive(store, churn_bundle.manifest.version)

    code, output = run("import", s3_uri(other.path, "job-b"), "--store", str(store))

    assert code == 1
    assert "already stored with another digest" in output
    assert stored_archive(store, churn_bundle.manifest.version) == archive_before
    assert stored_versions(store) == [churn_bundle.manifest.version]


def test_a_tampered_or_missing_archive_stores_nothing(
    s3_uri: Upload, churn_bundle: VerifiedBundle, tmp_path: Path
) -> None:
    tampered = tmp_path / "tampered"
    shutil.copytree(churn_bundle.path, tampered)
    reference = tampered / "reference.json"
    reference.write_text(reference.read_text().replace("0", "1", 1))
    store = tmp_path / "store"

    code, output = run("import", s3_uri(tampered, "job-t"), "--store", str(store))
    assert code == 1
    assert "reference.json" in output

    missing = f"s3://{BUCKET}/training-output/nope/model.tar.gz"
    code, output = run("import", missing, "--store", str(store))
    assert code == 1
    assert "could not download" in output
    assert not (store / "models").exists()
