"""``S3ArtifactStore`` against moto's server on 127.0.0.1: create-only, version-pinned, verified."""

from __future__ import annotations

import base64
import hashlib
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from lambdaserve.aws.clients import aws_client
from lambdaserve.aws.s3_artifact_store import S3ArtifactStore
from lambdaserve.aws.s3_bundle_source import download_bundle
from lambdaserve.kernel.bundle import (
    VerifiedBundle,
    open_bundle,
    pack_bundle,
    read_manifest,
    seal_bundle,
)
from lambdaserve.kernel.errors import (
    ArtifactStoreError,
    BundleError,
    BundleIntegrityError,
    ModelNotFoundError,
    VersionExistsError,
)
from tests.integration.moto_server import (
    closed_loopback_port,
    new_bucket,
    object_versions,
)

pytestmark = pytest.mark.integration

PREFIX = "team-a"
ARCHIVE_KEY = f"{PREFIX}/models/churn/1/bundle.tar.gz"
MANIFEST_KEY = f"{PREFIX}/models/churn/1/manifest.json"


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    return aws_client("s3", endpoint_url=moto_endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    return new_bucket(s3)


@pytest.fixture
def store(bucket: str, s3: Any, tmp_path: Path) -> S3ArtifactStore:
    return S3ArtifactStore(bucket, prefix=PREFIX, cache_dir=tmp_path / "cache", client=s3)


def reseal(source: Path, target: Path, **changes: object) -> VerifiedBundle:
    """A copy of a bundle sealed again with manifest fields changed (so another digest)."""
    shutil.copytree(source, target)
    return seal_bundle(target, read_manifest(target).model_copy(update=changes))


def archive_bytes(bundle: VerifiedBundle, work: Path) -> bytes:
    return pack_bundle(bundle.path, work / "bundle.tar.gz").read_bytes()


def test_put_get_open_round_trip(
    store: S3ArtifactStore, churn_bundle: VerifiedBundle, s3: Any, bucket: str, tmp_path: Path
) -> None:
    stored = store.put(churn_bundle.path)

    assert (stored.name, stored.version) == ("churn", "1")
    assert stored.digest == churn_bundle.digest
    assert stored.manifest == churn_bundle.manifest
    assert stored.uri.startswith(f"s3://{bucket}/{ARCHIVE_KEY}?versionId=")
    assert store.get("churn") == stored
    assert store.get("churn", "1") == stored
    assert store.versions("churn") == [stored]
    assert store.models() == ["churn"]
    assert store.next_version("churn") == "2"
    opened = store.open("churn")
    assert opened.digest == churn_bundle.digest
    assert opened.manifest == churn_bundle.manifest
    assert opened.path.is_relative_to(tmp_path / "cache")


def test_objects_are_the_reproducible_archive_and_the_manifest_with_checksums(
    store: S3ArtifactStore, churn_bundle: VerifiedBundle, s3: Any, bucket: str, tmp_path: Path
) -> None:
    store.put(churn_bundle.path)
    expected = archive_bytes(churn_bundle, tmp_path)

    assert [key for key, _ in object_versions(s3, bucket)] == [ARCHIVE_KEY, MANIFEST_KEY]
    assert s3.get_object(Bucket=bucket, Key=ARCHIVE_KEY)["Body"].read() == expected
    manifest = s3.get_object(Bucket=bucket, Key=MANIFEST_KEY)["Body"].read()
    assert hashlib.sha256(manifest).hexdigest() == churn_bundle.digest
    head = s3.head_object(Bucket=bucket, Key=ARCHIVE_KEY, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(expected).digest()).decode()


def test_from_uri_reads_what_another_store_wrote(
    store: S3ArtifactStore, churn_bundle: VerifiedBundle, s3: Any, bucket: str, tmp_path: Path
) -> None:
    stored = store.put(churn_bundle.path)

    other = S3ArtifactStore.from_uri(f"s3://{bucket}/{PREFIX}/", client=s3, cache_dir=tmp_path)

    assert other.uri == f"s3://{bucket}/{PREFIX}/"
    assert other.get("churn") == stored
    assert S3ArtifactStore.from_uri(f"s3://{bucket}", client=s3).models() == []


@pytest.mark.parametrize("uri", ["file:///tmp/store", "s3://", "s3://bucket/p?versionId=1"])
def test_from_uri_refuses_what_is_not_a_store_uri(uri: str, s3: Any) -> None:
    with pytest.raises(ArtifactStoreError, match="is not an s3://bucket"):
        S3ArtifactStore.from_uri(uri, client=s3)


def test_the_uri_pins_the_object_version_it_was_stored_as(
    store: S3ArtifactStore,
    churn_bundle: VerifiedBundle,
    s3: Any,
    bucket: str,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    stored = store.put(churn_bundle.path)
    other = reseal(
        churn_bundle.path, tmp_path / "other", created_at=datetime(2026, 1, 2, tzinfo=UTC)
    )
    s3.put_object(Bucket=bucket, Key=ARCHIVE_KEY, Body=archive_bytes(other, tmp_path))

    latest = store.get("churn", "1")
    pinned = download_bundle(stored.uri, tmp_path / "lambda-tmp", endpoint_url=moto_endpoint)

    assert latest.uri != stored.uri
    assert latest.digest == stored.digest  # the manifest copy was not touched
    original = open_bundle(pinned, cache_dir=tmp_path / "lambda-tmp", expected_digest=stored.digest)
    assert original.digest == churn_bundle.digest
    with pytest.raises(BundleIntegrityError, match="bundle digest mismatch"):
        store.open("churn", "1")


def test_a_stored_version_is_never_overwritten(
    store: S3ArtifactStore, churn_bundle: VerifiedBundle, s3: Any, bucket: str, tmp_path: Path
) -> None:
    store.put(churn_bundle.path)
    before = object_versions(s3, bucket)
    other = reseal(
        churn_bundle.path, tmp_path / "other", created_at=datetime(2026, 1, 2, tzinfo=UTC)
    )

    for bundle in (churn_bundle, other):
        with pytest.raises(VersionExistsError, match="churn version 1 is already stored"):
            store.put(bundle.path)

    assert object_versions(s3, bucket) == before


def test_an_archive_left_by_an_interrupted_put_is_adopted_when_identical(
    store: S3ArtifactStore, churn_bundle: VerifiedBundle, s3: Any, bucket: str, tmp_path: Path
) -> None:
    left = s3.put_object(Bucket=bucket, Key=ARCHIVE_KEY, Body=archive_bytes(churn_bundle, tmp_path))

    stored = store.put(churn_bundle.path)

    assert stored.uri.endswith(f"?versionId={left['VersionId']}")
    assert [key for key, _ in object_versions(s3, bucket)] == [ARCHIVE_KEY, MANIFEST_KEY]
    assert store.open("churn", "1").digest == churn_bundle.digest


def test_a_conditional_write_refuses_an_archive_key_already_taken(
    store: S3ArtifactStore, churn_bundle: VerifiedBundle, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """No manifest yet, so only ``If-None-Match: *`` on the archive stops the overwrite."""
    other = reseal(
        churn_bundle.path, tmp_path / "other", created_at=datetime(2026, 1, 2, tzinfo=UTC)
    )
    s3.put_object(Bucket=bucket, Key=ARCHIVE_KEY, Body=archive_bytes(other, tmp_path))
    before = object_versions(s3, bucket)

    with pytest.raises(VersionExistsError, match="uncommitted archive with other content"):
        store.put(churn_bundle.path)

    assert object_versions(s3, bucket) == before
    assert store.versions("churn") == []
    assert store.next_version("churn") == "2"


def test_a_commit_racing_in_after_the_existence_check_is_refused(
    store: S3ArtifactStore, churn_bundle: VerifiedBundle, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Another writer commits the version between put's check and its writes: If-None-Match wins."""
    racing = True

    def commit_first(params: dict[str, Any], **_: Any) -> None:
        nonlocal racing
        if racing and params["Key"] == ARCHIVE_KEY:
            racing = False
            manifest = (churn_bundle.path / "manifest.json").read_bytes()
            s3.put_object(
                Bucket=bucket, Key=ARCHIVE_KEY, Body=archive_bytes(churn_bundle, tmp_path)
            )
            s3.put_object(Bucket=bucket, Key=MANIFEST_KEY, Body=manifest)

    s3.meta.events.register("before-parameter-build.s3.PutObject", commit_first)
    try:
        with pytest.raises(VersionExistsError, match="churn version 1 is already stored"):
            store.put(churn_bundle.path)
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.PutObject", commit_first)

    assert not racing
    assert [key for key, _ in object_versions(s3, bucket)] == [ARCHIVE_KEY, MANIFEST_KEY]


def tamper_model_file(bundle_dir: Path) -> None:
    model = next(p for p in bundle_dir.iterdir() if p.suffix in {".onnx", ".skops"})
    model.write_bytes(model.read_bytes() + b"\0")


def add_unlisted_file(bundle_dir: Path) -> None:
    (bundle_dir / "notes.txt").write_text("not in the manifest")


@pytest.mark.parametrize("tamper", [tamper_model_file, add_unlisted_file])
def test_a_tampered_bundle_is_refused_before_anything_is_written(
    store: S3ArtifactStore, bundle_copy: Path, s3: Any, bucket: str, tamper: Any
) -> None:
    tamper(bundle_copy)

    with pytest.raises(BundleIntegrityError):
        store.put(bundle_copy)

    assert object_versions(s3, bucket) == []


@pytest.mark.parametrize(("status", "shown"), [(None, "never enabled"), ("Suspended", "Suspended")])
def test_an_unversioned_bucket_is_refused(
    s3: Any, churn_bundle: VerifiedBundle, tmp_path: Path, status: str | None, shown: str
) -> None:
    bucket = new_bucket(s3, versioning=status)
    store = S3ArtifactStore(bucket, cache_dir=tmp_path, client=s3)

    with pytest.raises(ArtifactStoreError, match=f"must be versioned \\(versioning: {shown}\\)"):
        store.put(churn_bundle.path)

    assert object_versions(s3, bucket) == []


def test_a_missing_model_or_version_names_what_exists(
    store: S3ArtifactStore, churn_bundle: VerifiedBundle, bucket: str
) -> None:
    with pytest.raises(ModelNotFoundError, match=r"no model named 'churn' .*\(models: none\)"):
        store.get("churn")
    store.put(churn_bundle.path)

    with pytest.raises(ModelNotFoundError, match=r"no model named 'iris' .*\(models: churn\)"):
        store.get("iris")
    with pytest.raises(ModelNotFoundError, match=r"churn version 9 is not in .*\(versions: 1\)"):
        store.open("churn", "9")


def test_versions_sort_numerically_and_skip_uncommitted_ones(
    store: S3ArtifactStore, churn_bundle: VerifiedBundle, s3: Any, bucket: str, tmp_path: Path
) -> None:
    for version in ("10", "2"):
        store.put(reseal(churn_bundle.path, tmp_path / version, version=version).path)
    store.put(churn_bundle.path)
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/models/churn/11/bundle.tar.gz", Body=b"partial")

    assert [b.version for b in store.versions("churn")] == ["1", "2", "10"]
    assert store.get("churn").version == "10"
    assert store.next_version("churn") == "12"


def test_a_missing_bucket_is_named(s3: Any, churn_bundle: VerifiedBundle, tmp_path: Path) -> None:
    store = S3ArtifactStore("lambdaserve-no-such-bucket", cache_dir=tmp_path, client=s3)

    for operation in (store.models, lambda: store.put(churn_bundle.path)):
        with pytest.raises(ArtifactStoreError, match="bucket lambdaserve-no-such-bucket does not"):
            operation()


def test_an_unreachable_endpoint_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_loopback_port()}"
    store = S3ArtifactStore(
        "lambdaserve-artifacts", cache_dir=tmp_path, client=aws_client("s3", endpoint_url=endpoint)
    )
    started = time.monotonic()

    with pytest.raises(ArtifactStoreError, match=f"S3 endpoint {endpoint} is unreachable"):
        store.get("churn")

    assert time.monotonic() - started < 10


def test_access_denied_says_which_permissions_are_needed(tmp_path: Path) -> None:
    """moto's server does not enforce IAM by default, so botocore's Stubber plays S3 here."""
    client = aws_client("s3", endpoint_url=f"http://127.0.0.1:{closed_loopback_port()}")
    store = S3ArtifactStore("lambdaserve-artifacts", cache_dir=tmp_path, client=client)

    with Stubber(client) as stubber:
        stubber.add_client_error("list_objects_v2", "AccessDenied", http_status_code=403)
        with pytest.raises(ArtifactStoreError, match=r"access denied; reading .* s3:ListBucket"):
            store.models()


def replace_archive(cached: Path, other: VerifiedBundle, work: Path) -> None:
    cached.write_bytes(archive_bytes(other, work))


def truncate_archive(cached: Path, other: VerifiedBundle, work: Path) -> None:
    cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 2])


def alter_unpacked_file(cached: Path, other: VerifiedBundle, work: Path) -> None:
    unpacked = next(p for p in cached.parent.iterdir() if p.is_dir())
    tamper_model_file(unpacked)


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (replace_archive, "bundle digest mismatch"),
        (truncate_archive, "not a readable bundle archive|truncated or corrupt"),
        (alter_unpacked_file, r"bundle file 'model\.\w+' is \d+ bytes"),
    ],
)
def test_a_tampered_cache_is_refused(
    store: S3ArtifactStore, churn_bundle: VerifiedBundle, tmp_path: Path, tamper: Any, problem: str
) -> None:
    stored = store.put(churn_bundle.path)
    store.open("churn", "1")
    (cached,) = (p for p in store.cache_dir.iterdir() if p.is_file())
    assert cached.name.endswith(stored.uri.rpartition("=")[2]), "cached by object version"
    other = reseal(
        churn_bundle.path, tmp_path / "other", created_at=datetime(2026, 1, 2, tzinfo=UTC)
    )

    tamper(cached, other, tmp_path)

    with pytest.raises(BundleError, match=problem):
        store.open("churn", "1")
