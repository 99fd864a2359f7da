"""The S3 artifact store: the local store's layout, on a versioned bucket.

```
s3://<bucket>/<prefix>models/<name>/<version>/bundle.tar.gz   the archive, written first
s3://<bucket>/<prefix>models/<name>/<version>/manifest.json   its manifest, written last: the commit
```
Both objects are created with ``If-None-Match: *`` (two writers of one version cannot both win) and
carry their sha256 so S3 refuses a corrupted upload. A stored bundle's URI pins the archive's object
version; ``open`` downloads that version once into a cache directory (``/tmp`` on Lambda) and
verifies every hash before anything is deserialized.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from pydantic import ValidationError

from lambdaserve.aws.clients import aws_client
from lambdaserve.aws.s3_bundle_source import fetch_archive
from lambdaserve.kernel.artifacts import ARCHIVE, StoredBundle, bundle_key, version_order
from lambdaserve.kernel.bundle import (
    VerifiedBundle,
    open_bundle,
    pack_bundle,
    sha256_file,
    verify_bundle,
)
from lambdaserve.kernel.errors import (
    ArtifactStoreError,
    BundleIntegrityError,
    ModelNotFoundError,
    VersionExistsError,
)
from lambdaserve.kernel.manifest import MANIFEST_FILE, Manifest

_TAKEN_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NotFound", "404"})
_DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "Forbidden", "403"})
_CHUNK = 1024 * 1024


class _KeyTakenError(VersionExistsError):
    """A conditional create found the key already written (or being written)."""


class _MissingObjectError(ModelNotFoundError):
    """The object (or the object version) does not exist."""


def default_cache_dir() -> Path:
    """Where archives are downloaded and unpacked: ``/tmp/lambdaserve-bundles`` on Lambda."""
    return Path(tempfile.gettempdir()) / "lambdaserve-bundles"


class S3ArtifactStore:
    """Immutable bundles in a versioned S3 bucket, laid out like ``LocalArtifactStore``.

    >>> store = S3ArtifactStore.from_uri("s3://my-artifacts/team-a")  # doctest: +SKIP
    >>> store.put(Path("model")).uri  # doctest: +SKIP
    's3://my-artifacts/team-a/models/churn/1/bundle.tar.gz?versionId=...'
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        cache_dir: Path | None = None,
        client: Any | None = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ArtifactStoreError(f"{bucket!r} is not an S3 bucket name")
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._client = client if client is not None else aws_client("s3")

    @classmethod
    def from_uri(
        cls, uri: str, *, cache_dir: Path | None = None, client: Any | None = None
    ) -> S3ArtifactStore:
        """A store for ``s3://bucket`` or ``s3://bucket/prefix``."""
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc or parsed.query:
            raise ArtifactStoreError(f"{uri!r} is not an s3://bucket[/prefix] store URI")
        return cls(parsed.netloc, prefix=parsed.path, cache_dir=cache_dir, client=client)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    # -- writing ------------------------------------------------------------------------------

    def put(self, bundle_dir: Path) -> StoredBundle:
        """Verify and store a bundle under its manifest's name and version (create-only)."""
        bundle = verify_bundle(bundle_dir)
        name, version = bundle.manifest.name, bundle.manifest.version
        manifest_bytes = (bundle.path / MANIFEST_FILE).read_bytes()
        if hashlib.sha256(manifest_bytes).hexdigest() != bundle.digest:
            raise BundleIntegrityError(f"{MANIFEST_FILE} in {bundle.path} changed while storing")
        self._require_versioning()
        if self._exists(self._key(name, version, MANIFEST_FILE)):
            raise VersionExistsError(_taken(name, version, self.uri))
        with tempfile.TemporaryDirectory(prefix="lambdaserve-put-") as work:
            archive = pack_bundle(bundle.path, Path(work) / ARCHIVE)
            archive_version = self._put_archive(name, version, archive)
        try:
            self._create(self._key(name, version, MANIFEST_FILE), manifest_bytes, bundle.digest)
        except _KeyTakenError as exc:
            raise VersionExistsError(_taken(name, version, self.uri)) from exc
        archive_uri = self._object_uri(self._key(name, version), archive_version)
        return StoredBundle(name, version, archive_uri, bundle.digest, bundle.manifest)

    def _require_versioning(self) -> None:
        with self._s3_errors(f"read the versioning status of bucket {self.bucket}"):
            status = self._client.get_bucket_versioning(Bucket=self.bucket).get("Status")
        if status != "Enabled":
            raise ArtifactStoreError(_unversioned(self.bucket, status))

    def _put_archive(self, name: str, version: str, archive: Path) -> str:
        """Create the archive; adopt an identical one a failed earlier put left uncommitted."""
        key, digest = self._key(name, version), sha256_file(archive)
        try:
            with archive.open("rb") as body:
                return self._create(key, body, digest, content_type="application/gzip")
        except _KeyTakenError as exc:
            try:
                existing_digest, version_id = self._hash_object(key)
            except _MissingObjectError:
                raise VersionExistsError(
                    f"another writer is storing model {name} version {version} right now"
                ) from exc
            if existing_digest == digest:
                return version_id
            raise VersionExistsError(
                f"model {name} version {version} has an uncommitted archive with other content "
                f"at {self._object_uri(key)}; delete it or store another version"
            ) from exc

    def _create(
        self,
        key: str,
        body: bytes | IO[bytes],
        sha256_hex: str,
        *,
        content_type: str = "application/json",
    ) -> str:
        """Create ``key`` unless it exists; return the new object version id."""
        with self._s3_errors(f"write {self._object_uri(key)}"):
            response = self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                IfNoneMatch="*",
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256_hex)).decode(),
            )
        version_id: str | None = response.get("VersionId")
        if not version_id or version_id == "null":
            raise ArtifactStoreError(_unversioned(self.bucket, "no version id on write"))
        return version_id

    def _hash_object(self, key: str) -> tuple[str, str]:
        """The sha256 and version id of the current object at ``key``."""
        digest = hashlib.sha256()
        with self._s3_errors(f"read {self._object_uri(key)}"):
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            for chunk in response["Body"].iter_chunks(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest(), str(response.get("VersionId"))

    # -- reading ------------------------------------------------------------------------------

    def get(self, name: str, version: str | None = None) -> StoredBundle:
        """A stored version (the latest when ``version`` is None); ModelNotFoundError if none."""
        if version is not None:
            return self._stored(name, version)
        committed = self._committed_versions(name)
        if not committed:
            known = ", ".join(self.models()) or "none"
            raise ModelNotFoundError(f"no model named {name!r} in {self.uri} (models: {known})")
        return self._stored(name, committed[-1])

    def versions(self, name: str) -> list[StoredBundle]:
        return [self._stored(name, v) for v in self._committed_versions(name)]

    def models(self) -> list[str]:
        return sorted(self._list_prefixes(f"{self.prefix}models/"))

    def next_version(self, name: str) -> str:
        """One past the highest numeric version, uncommitted ones too (their keys are taken)."""
        taken = self._list_prefixes(f"{self.prefix}models/{name}/")
        numbers = [int(v) for v in taken if v.isdigit()]
        return str(max(numbers, default=0) + 1)

    def open(
        self, name: str, version: str | None = None, *, archive_sha256: str | None = None
    ) -> VerifiedBundle:
        """Download the pinned archive version (once), unpack it and verify every hash."""
        stored = self.get(name, version)
        archive = self._download(stored.uri)
        return open_bundle(
            archive,
            cache_dir=self.cache_dir,
            expected_digest=stored.digest,
            expected_archive_sha256=archive_sha256,
        )

    def _stored(self, name: str, version: str) -> StoredBundle:
        manifest_bytes, manifest = self._manifest(name, version)
        archive_key = self._key(name, version)
        with self._s3_errors(f"read {self._object_uri(archive_key)}"):
            head = self._client.head_object(Bucket=self.bucket, Key=archive_key)
        uri = self._object_uri(archive_key, head.get("VersionId"))
        return StoredBundle(
            name, version, uri, hashlib.sha256(manifest_bytes).hexdigest(), manifest
        )

    def _manifest(self, name: str, version: str) -> tuple[bytes, Manifest]:
        key = self._key(name, version, MANIFEST_FILE)
        try:
            raw = self._read(key)
        except _MissingObjectError as exc:
            known = ", ".join(self._committed_versions(name)) or "none"
            raise ModelNotFoundError(
                f"model {name} version {version} is not in {self.uri} (versions: {known})"
            ) from exc
        try:
            return raw, Manifest.model_validate_json(raw)
        except ValidationError as exc:
            raise ArtifactStoreError(f"{self._object_uri(key)} is not a bundle manifest") from exc

    def _read(self, key: str) -> bytes:
        with self._s3_errors(f"read {self._object_uri(key)}"):
            body: bytes = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def _exists(self, key: str) -> bool:
        try:
            with self._s3_errors(f"read {self._object_uri(key)}"):
                self._client.head_object(Bucket=self.bucket, Key=key)
        except _MissingObjectError:
            return False
        return True

    def _committed_versions(self, name: str) -> list[str]:
        """Versions of ``name`` whose manifest (the commit marker) is stored, oldest first."""
        model_prefix = f"{self.prefix}models/{name}/"
        found = []
        for key in self._list_keys(model_prefix):
            version, _, filename = key.removeprefix(model_prefix).partition("/")
            if filename == MANIFEST_FILE:
                found.append(version)
        return sorted(found, key=version_order)

    def _list_keys(self, prefix: str) -> Iterator[str]:
        for page in self._pages(Prefix=prefix):
            for item in page.get("Contents", []):
                yield str(item["Key"])

    def _list_prefixes(self, prefix: str) -> list[str]:
        return [
            str(common["Prefix"]).removeprefix(prefix).rstrip("/")
            for page in self._pages(Prefix=prefix, Delimiter="/")
            for common in page.get("CommonPrefixes", [])
        ]

    def _pages(self, **params: str) -> list[dict[str, Any]]:
        with self._s3_errors(f"list {self.uri}"):
            paginator = self._client.get_paginator("list_objects_v2")
            return list(paginator.paginate(Bucket=self.bucket, **params))

    def _download(self, uri: str) -> Path:
        """The archive named by a pinned URI, from the cache or downloaded into it."""
        with self._s3_errors(f"download {uri}"):
            return fetch_archive(self._client, uri, self.cache_dir)

    # -- plumbing -----------------------------------------------------------------------------

    def _key(self, name: str, version: str, filename: str = ARCHIVE) -> str:
        return self.prefix + bundle_key(name, version, filename)

    def _object_uri(self, key: str, version_id: str | None = None) -> str:
        query = f"?versionId={version_id}" if version_id else ""
        return f"s3://{self.bucket}/{key}{query}"

    @contextmanager
    def _s3_errors(self, action: str) -> Iterator[None]:
        """Turn botocore errors into ArtifactStoreError subclasses that say what to do."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            raise self._client_error(exc, action) from exc
        except BotoCoreError as exc:
            raise self._transport_error(exc, action) from exc

    def _client_error(self, exc: Any, action: str) -> ArtifactStoreError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _TAKEN_CODES:
            return _KeyTakenError(f"could not {action}: the key is already written ({code})")
        if code == "NoSuchBucket" or (code in _MISSING_CODES and "BucketName" in error):
            return ArtifactStoreError(
                f"could not {action}: bucket {self.bucket} does not exist (create it, or check "
                "the store URI and AWS_REGION)"
            )
        if code in _MISSING_CODES:
            return _MissingObjectError(f"could not {action}: it does not exist ({code})")
        if code in _DENIED_CODES:
            return ArtifactStoreError(
                f"could not {action}: access denied; reading {self.uri} needs s3:ListBucket, "
                "s3:GetObject and s3:GetObjectVersion, storing also s3:PutObject and "
                "s3:GetBucketVersioning"
            )
        return ArtifactStoreError(f"could not {action}: {exc}")

    def _transport_error(self, exc: Any, action: str) -> ArtifactStoreError:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError, NoCredentialsError, PartialCredentialsError

        if isinstance(exc, BotoConnectionError | HTTPClientError):
            endpoint = self._client.meta.endpoint_url
            return ArtifactStoreError(
                f"could not {action}: S3 endpoint {endpoint} is unreachable ({exc}); check the "
                "network, AWS_REGION and AWS_ENDPOINT_URL"
            )
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return ArtifactStoreError(
                f"could not {action}: no AWS credentials found (set AWS_PROFILE or run with a role)"
            )
        return ArtifactStoreError(f"could not {action}: {exc}")


def _taken(name: str, version: str, store_uri: str) -> str:
    return (
        f"model {name} version {version} is already stored in {store_uri}; bundles are "
        "immutable, store it under another version"
    )


def _unversioned(bucket: str, status: str | None) -> str:
    return (
        f"artifact bucket {bucket} must be versioned (versioning: {status or 'never enabled'}) so "
        "every stored bundle URI pins its object version; enable it with `aws s3api "
        f"put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled`"
    )
