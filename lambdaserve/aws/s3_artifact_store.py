"""The S3 artifact store: the local store's layout, on a versioned bucket.

```
s3://<bucket>/<prefix>models/<name>/<version>/bundle.tar.gz   the archive, written first
s3://<bucket>/<prefix>models/<name>/<version>/manifest.json   its manifest, written last: the commit
```
Both objects are created with ``If-None-Match: *`` (two writers of one version cannot both win) and
carry their sha256 so S3 refuses a corrupted upload. A stored bundle's URI pins the archive's object
version; ``open`` downloads that version once into a cache directory (``/tmp`` on Lambda) and
verifies every hash before anything is deserialized. The object calls, and what S3's errors mean
to the store, are ``aws.s3_store_objects``.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError

from lambdaserve.aws.clients import aws_client
from lambdaserve.aws.s3_store_objects import KeyTakenError, MissingObjectError, StoreObjects
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
        self._objects = StoreObjects(
            client if client is not None else aws_client("s3"), bucket, self.uri
        )

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
        self._objects.require_versioning()
        if self._objects.exists(self._key(name, version, MANIFEST_FILE)):
            raise VersionExistsError(_taken(name, version, self.uri))
        with tempfile.TemporaryDirectory(prefix="lambdaserve-put-") as work:
            archive = pack_bundle(bundle.path, Path(work) / ARCHIVE)
            archive_version = self._put_archive(name, version, archive)
        try:
            self._objects.create(
                self._key(name, version, MANIFEST_FILE), manifest_bytes, bundle.digest
            )
        except KeyTakenError as exc:
            raise VersionExistsError(_taken(name, version, self.uri)) from exc
        archive_uri = self._objects.uri(self._key(name, version), archive_version)
        return StoredBundle(name, version, archive_uri, bundle.digest, bundle.manifest)

    def _put_archive(self, name: str, version: str, archive: Path) -> str:
        """Create the archive; adopt an identical one a failed earlier put left uncommitted."""
        key, digest = self._key(name, version), sha256_file(archive)
        try:
            with archive.open("rb") as body:
                return self._objects.create(key, body, digest, content_type="application/gzip")
        except KeyTakenError as exc:
            try:
                existing_digest, version_id = self._objects.hash_object(key)
            except MissingObjectError:
                raise VersionExistsError(
                    f"another writer is storing model {name} version {version} right now"
                ) from exc
            if existing_digest == digest:
                return version_id
            raise VersionExistsError(
                f"model {name} version {version} has an uncommitted archive with other content "
                f"at {self._objects.uri(key)}; delete it or store another version"
            ) from exc

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
        return sorted(self._objects.list_prefixes(f"{self.prefix}models/"))

    def next_version(self, name: str) -> str:
        """One past the highest numeric version, uncommitted ones too (their keys are taken)."""
        taken = self._objects.list_prefixes(f"{self.prefix}models/{name}/")
        numbers = [int(v) for v in taken if v.isdigit()]
        return str(max(numbers, default=0) + 1)

    def open(
        self, name: str, version: str | None = None, *, archive_sha256: str | None = None
    ) -> VerifiedBundle:
        """Download the pinned archive version (once), unpack it and verify every hash."""
        stored = self.get(name, version)
        archive = self._objects.download(stored.uri, self.cache_dir)
        return open_bundle(
            archive,
            cache_dir=self.cache_dir,
            expected_digest=stored.digest,
            expected_archive_sha256=archive_sha256,
        )

    def _stored(self, name: str, version: str) -> StoredBundle:
        manifest_bytes, manifest = self._manifest(name, version)
        archive_key = self._key(name, version)
        uri = self._objects.uri(archive_key, self._objects.version_of(archive_key))
        return StoredBundle(
            name, version, uri, hashlib.sha256(manifest_bytes).hexdigest(), manifest
        )

    def _manifest(self, name: str, version: str) -> tuple[bytes, Manifest]:
        key = self._key(name, version, MANIFEST_FILE)
        try:
            raw = self._objects.read(key)
        except MissingObjectError as exc:
            known = ", ".join(self._committed_versions(name)) or "none"
            raise ModelNotFoundError(
                f"model {name} version {version} is not in {self.uri} (versions: {known})"
            ) from exc
        try:
            return raw, Manifest.model_validate_json(raw)
        except ValidationError as exc:
            raise ArtifactStoreError(f"{self._objects.uri(key)} is not a bundle manifest") from exc

    def _committed_versions(self, name: str) -> list[str]:
        """Versions of ``name`` whose manifest (the commit marker) is stored, oldest first."""
        model_prefix = f"{self.prefix}models/{name}/"
        found = []
        for key in self._objects.list_keys(model_prefix):
            version, _, filename = key.removeprefix(model_prefix).partition("/")
            if filename == MANIFEST_FILE:
                found.append(version)
        return sorted(found, key=version_order)

    # -- plumbing -----------------------------------------------------------------------------

    def _key(self, name: str, version: str, filename: str = ARCHIVE) -> str:
        return self.prefix + bundle_key(name, version, filename)


def _taken(name: str, version: str, store_uri: str) -> str:
    return (
        f"model {name} version {version} is already stored in {store_uri}; bundles are "
        "immutable, store it under another version"
    )
