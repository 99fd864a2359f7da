"""The MLflow registry adapter: on SQLite in a temp dir, and once against a real ``mlflow server``
process on a loopback port (the team setup)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.errors import ModelNotFoundError, RegistryError
from lambdaserve.local.artifact_store import LocalArtifactStore
from lambdaserve.registry.mlflow_registry import MlflowRegistry
from lambdaserve.registry.model_registry import CHAMPION
from lambdaserve.serving.background_server import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path: Path, churn_bundle: VerifiedBundle) -> LocalArtifactStore:
    local = LocalArtifactStore(tmp_path / "store")
    local.put(churn_bundle.path)
    return local


def _register_and_check(registry: MlflowRegistry, store: LocalArtifactStore) -> None:
    stored = store.get("churn", "1")
    version, created = registry.register(stored, store.open("churn", "1"), code_version="test")
    assert created
    assert version.version == "1"
    assert version.bundle_uri == stored.uri
    assert version.bundle_sha256 == stored.digest
    assert version.bundle_version == "1"
    assert version.metrics["roc_auc"] == pytest.approx(stored.manifest.metrics["roc_auc"])
    again, created_again = registry.register(stored, store.open("churn", "1"), code_version="test")
    assert (again.version, created_again) == ("1", False)
    assert [v.version for v in registry.versions("churn")] == ["1"]
    registry.set_alias("churn", CHAMPION, "1")
    champion = registry.by_alias("churn", CHAMPION)
    assert champion is not None and champion.aliases == (CHAMPION,)
    registry.set_tags("churn", "1", {"lambda_version": "7"})
    assert registry.get("churn", "1").lambda_version == "7"
    assert registry.models() == ["churn"]


def test_sqlite_registry_logs_the_run_and_dedupes(
    tmp_path: Path, store: LocalArtifactStore
) -> None:
    registry = MlflowRegistry.for_store(store.root)
    assert registry.tracking_uri.startswith("sqlite:///")
    _register_and_check(registry, store)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registry.tracking_uri)
    run = client.get_run(registry.get("churn", "1").run_id or "")
    assert run.data.params["estimator"] == "random_forest"
    assert run.data.tags["data_fingerprint"] == store.get("churn").manifest.data.fingerprint
    assert run.data.tags["code_version"] == "test"
    assert "cv_roc_auc_mean" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "bundle")}
    assert {"bundle/manifest.json", "bundle/model.skops", "bundle/reference.json"} <= artifacts
    assert (store.root / "registry" / "mlflow.db").is_file()
    assert not (Path.cwd() / "mlruns").exists()


def test_missing_versions_and_aliases(store: LocalArtifactStore) -> None:
    registry = MlflowRegistry.for_store(store.root)
    with pytest.raises(ModelNotFoundError) as missing:
        registry.get("churn", "9")
    assert str(missing.value) == (
        "churn v9 is not in the registry (registered versions: none); a bundle stored with "
        "--no-register is registered with `lambdaserve register churn:BUNDLE_VERSION`"
    )
    assert registry.by_alias("churn", CHAMPION) is None
    assert registry.versions("nothing") == []


def test_unreachable_registry_fails_fast_and_registers_nothing(
    store: LocalArtifactStore,
) -> None:
    registry = MlflowRegistry(f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(RegistryError, match=r"unreachable|failed"):
        registry.register(store.get("churn"), store.open("churn"), code_version="test")
    assert time.monotonic() - started < 30


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root}/server.db",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
        env={**os.environ},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((root / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_team_server_over_http(mlflow_server: str, store: LocalArtifactStore) -> None:
    registry = MlflowRegistry(mlflow_server)
    _register_and_check(registry, store)
    response = httpx.get(
        f"{mlflow_server}/api/2.0/mlflow/registered-models/alias",
        params={"name": "churn", "alias": CHAMPION},
    )
    assert response.json()["model_version"]["version"] == "1"
