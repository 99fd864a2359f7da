"""The artifact store port: immutable, versioned bundles (a local directory or an S3 bucket).

Both adapters lay bundles out the same way: ``models/<name>/<version>/bundle.tar.gz`` next to a
copy of its ``manifest.json``. Versions are create-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.errors import ArtifactStoreError
from lambdaserve.kernel.manifest import Manifest

ARCHIVE = "bundle.tar.gz"


def path_from_uri(uri: str) -> Path:
    """``file:///abs/path`` or a plain path, as a Path."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme:
        raise ArtifactStoreError(f"{uri!r} is not a local path or file:// URI")
    return Path(uri)


def bundle_key(name: str, version: str, filename: str = ARCHIVE) -> str:
    return f"models/{name}/{version}/{filename}"


def version_order(version: str) -> tuple[int, int, str]:
    """Sort key of bundle versions: numeric versions ascending, then the others by name."""
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


@dataclass(frozen=True)
class StoredBundle:
    """A bundle in a store: ``uri`` names the exact archive (an S3 URI pins its object version),
    ``digest`` is the sha256 of its manifest (what ``MODEL_SHA256`` names)."""

    name: str
    version: str
    uri: str
    digest: str
    manifest: Manifest


class ArtifactStore(Protocol):
    def put(self, bundle_dir: Path) -> StoredBundle:
        """Verify and store a bundle under its manifest's name and version; never overwrite."""
        ...

    def get(self, name: str, version: str | None = None) -> StoredBundle:
        """A stored version (the latest when ``version`` is None); ModelNotFoundError if none."""
        ...

    def versions(self, name: str) -> list[StoredBundle]: ...

    def models(self) -> list[str]: ...

    def next_version(self, name: str) -> str: ...

    def open(
        self, name: str, version: str | None = None, *, archive_sha256: str | None = None
    ) -> VerifiedBundle:
        """Fetch (and cache) the archive, unpack it and verify every hash; with
        ``archive_sha256`` (the registry's record), check the archive before opening it."""
        ...
