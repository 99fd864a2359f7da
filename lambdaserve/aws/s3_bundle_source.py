"""Fetch a bundle archive named by an ``s3://bucket/key[?versionId=...]`` URI into a local cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from lambdaserve.aws.clients import aws_client
from lambdaserve.kernel.errors import BundleError


def parse_s3_uri(uri: str) -> tuple[str, str, str | None]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise BundleError(f"{uri!r} is not an s3://bucket/key URI")
    version = parse_qs(parsed.query).get("versionId", [None])[0]
    return parsed.netloc, parsed.path.lstrip("/"), version


def fetch_archive(client: Any, uri: str, cache_dir: Path) -> Path:
    """The object a (version-pinned) S3 URI names, downloaded once into ``cache_dir``.

    Raises botocore's errors (the caller maps them); a failed download leaves no partial file.
    The caller verifies hashes after download.
    """
    bucket, key, version = parse_s3_uri(uri)
    suffix = f"-{version}" if version else ""
    target = cache_dir / f"{bucket}-{key.replace('/', '_')}{suffix}"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    extra = {"VersionId": version} if version else None
    partial = target.with_name(target.name + ".partial")
    try:
        client.download_file(bucket, key, str(partial), ExtraArgs=extra)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.rename(target)
    return target


def download_bundle(uri: str, cache_dir: Path, *, endpoint_url: str | None = None) -> Path:
    """Download once per execution environment; the caller verifies hashes after download."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fetch_archive(aws_client("s3", endpoint_url=endpoint_url), uri, cache_dir)
    except (BotoCoreError, ClientError) as exc:
        raise BundleError(f"could not download model bundle {uri}: {exc}") from exc
