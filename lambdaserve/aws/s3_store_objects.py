"""The S3 artifact store's objects in its bucket, and what S3's errors mean to the store.

``StoreObjects`` creates objects only if absent (``If-None-Match: *``) with their sha256 for S3 to
check, insists on an object version for each write, and reads, hashes, lists and downloads
objects. Every botocore error becomes an ``ArtifactStoreError`` that says what to do: a key
already written is a ``KeyTakenError``, a missing object (or object version) a
``MissingObjectError``, a missing bucket, denied access, an unreachable endpoint or missing
credentials each say which.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from lambdaserve.aws.s3_bundle_source import fetch_archive
from lambdaserve.kernel.errors import ArtifactStoreError, ModelNotFoundError, VersionExistsError

_TAKEN_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NotFound", "404"})
_DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "Forbidden", "403"})
_CHUNK = 1024 * 1024


class KeyTakenError(VersionExistsError):
    """A conditional create found the key already written (or being written)."""


class MissingObjectError(ModelNotFoundError):
    """The object (or the object version) does not exist."""


class StoreObjects:
    """The objects of the store at ``store_uri`` in ``bucket``, through an S3 ``client``."""

    def __init__(self, client: Any, bucket: str, store_uri: str) -> None:
        self.bucket = bucket
        self.store_uri = store_uri
        self._client = client

    def uri(self, key: str, version_id: str | None = None) -> str:
        query = f"?versionId={version_id}" if version_id else ""
        return f"s3://{self.bucket}/{key}{query}"

    # -- writing ------------------------------------------------------------------------------

    def require_versioning(self) -> None:
        with self._s3_errors(f"read the versioning status of bucket {self.bucket}"):
            status = self._client.get_bucket_versioning(Bucket=self.bucket).get("Status")
        if status != "Enabled":
            raise ArtifactStoreError(_unversioned(self.bucket, status))

    def create(
        self,
        key: str,
        body: bytes | IO[bytes],
        sha256_hex: str,
        *,
        content_type: str = "application/json",
    ) -> str:
        """Create ``key`` unless it exists; return the new object version id."""
        with self._s3_errors(f"write {self.uri(key)}"):
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

    # -- reading ------------------------------------------------------------------------------

    def hash_object(self, key: str) -> tuple[str, str]:
        """The sha256 and version id of the current object at ``key``."""
        digest = hashlib.sha256()
        with self._s3_errors(f"read {self.uri(key)}"):
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            for chunk in response["Body"].iter_chunks(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest(), str(response.get("VersionId"))

    def read(self, key: str) -> bytes:
        with self._s3_errors(f"read {self.uri(key)}"):
            body: bytes = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def version_of(self, key: str) -> str | None:
        """The version id of the current object at ``key``."""
        with self._s3_errors(f"read {self.uri(key)}"):
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        version_id: str | None = head.get("VersionId")
        return version_id

    def exists(self, key: str) -> bool:
        try:
            with self._s3_errors(f"read {self.uri(key)}"):
                self._client.head_object(Bucket=self.bucket, Key=key)
        except MissingObjectError:
            return False
        return True

    def list_keys(self, prefix: str) -> Iterator[str]:
        for page in self._pages(Prefix=prefix):
            for item in page.get("Contents", []):
                yield str(item["Key"])

    def list_prefixes(self, prefix: str) -> list[str]:
        return [
            str(common["Prefix"]).removeprefix(prefix).rstrip("/")
            for page in self._pages(Prefix=prefix, Delimiter="/")
            for common in page.get("CommonPrefixes", [])
        ]

    def _pages(self, **params: str) -> list[dict[str, Any]]:
        with self._s3_errors(f"list {self.store_uri}"):
            paginator = self._client.get_paginator("list_objects_v2")
            return list(paginator.paginate(Bucket=self.bucket, **params))

    def download(self, uri: str, cache_dir: Path) -> Path:
        """The archive named by a pinned URI, from the cache or downloaded into it."""
        with self._s3_errors(f"download {uri}"):
            return fetch_archive(self._client, uri, cache_dir)

    # -- errors -------------------------------------------------------------------------------

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
            return KeyTakenError(f"could not {action}: the key is already written ({code})")
        if code == "NoSuchBucket" or (code in _MISSING_CODES and "BucketName" in error):
            return ArtifactStoreError(
                f"could not {action}: bucket {self.bucket} does not exist (create it, or check "
                "the store URI and AWS_REGION)"
            )
        if code in _MISSING_CODES:
            return MissingObjectError(f"could not {action}: it does not exist ({code})")
        if code in _DENIED_CODES:
            return ArtifactStoreError(
                f"could not {action}: access denied; reading {self.store_uri} needs "
                "s3:ListBucket, s3:GetObject and s3:GetObjectVersion, storing also s3:PutObject "
                "and s3:GetBucketVersioning"
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


def _unversioned(bucket: str, status: str | None) -> str:
    return (
        f"artifact bucket {bucket} must be versioned (versioning: {status or 'never enabled'}) so "
        "every stored bundle URI pins its object version; enable it with `aws s3api "
        f"put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled`"
    )
