"""The local artifact store: S3-like layout, create-only versions, verified reads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.errors import BundleIntegrityError, ModelNotFoundError, VersionExistsError
from lambdaserve.local.artifact_store import LocalArtifactStore, path_from_uri

pytestmark = pytest.mark.unit


def test_put_lays_out_like_the_bucket_and_reads_back(
    tmp_path: Path, churn_bundle: VerifiedBundle
) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    stored = store.put(churn_bundle.path)
    archive = tmp_path / "store" / "models" / "churn" / "1" / "bundle.tar.gz"
    assert path_from_uri(stored.uri) == archive.resolve()
    assert stored.digest == churn_bundle.digest
    opened = store.open("churn", "1")
    assert opened.digest == churn_bundle.digest
    assert store.models() == ["churn"]
    assert store.next_version("churn") == "2"
    assert store.get("churn").version == "1"


def test_versions_are_immutable(tmp_path: Path, churn_bundle: VerifiedBundle) -> None:
    store = LocalArtifactStore(tmp_path)
    store.put(churn_bundle.path)
    before = (tmp_path / "models" / "churn" / "1" / "bundle.tar.gz").read_bytes()
    with pytest.raises(VersionExistsError, match="already stored; bundles are immutable"):
        store.put(churn_bundle.path)
    assert (tmp_path / "models" / "churn" / "1" / "bundle.tar.gz").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "models" / "churn").iterdir()) == ["1"]


def test_tampered_bundle_is_not_stored(tmp_path: Path, bundle_copy: Path) -> None:
    (bundle_copy / "model.onnx").write_bytes(b"not a model")
    store = LocalArtifactStore(tmp_path / "store")
    with pytest.raises(BundleIntegrityError):
        store.put(bundle_copy)
    assert store.models() == []


def test_tampered_archive_is_refused_on_read(tmp_path: Path, churn_bundle: VerifiedBundle) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    stored = store.put(churn_bundle.path)
    other = tmp_path / "other"
    shutil.copytree(churn_bundle.path, other)
    (other / "model.onnx").write_bytes(b"x")
    archive = path_from_uri(stored.uri)
    archive.chmod(0o644)
    import tarfile

    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(other.iterdir()):
            tar.add(path, arcname=path.name)
    with pytest.raises(BundleIntegrityError):
        store.open("churn", "1")


def test_missing_models_name_what_exists(tmp_path: Path, churn_bundle: VerifiedBundle) -> None:
    store = LocalArtifactStore(tmp_path)
    store.put(churn_bundle.path)
    with pytest.raises(ModelNotFoundError, match=r"no model named 'fraud'.*models: churn"):
        store.get("fraud")
    with pytest.raises(ModelNotFoundError, match="churn version 9"):
        store.get("churn", "9")
