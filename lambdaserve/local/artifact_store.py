"""The local artifact store: a directory laid out exactly like the S3 artifact bucket.

```
<root>/models/<name>/<version>/bundle.tar.gz   the immutable, verified bundle
<root>/models/<name>/<version>/manifest.json   a copy, so listing never unpacks archives
<root>/.cache/bundles/                          unpacked bundles (what /tmp is on Lambda)
```
Versions are create-only: storing a version that exists fails and changes nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lambdaserve.kernel.artifacts import ARCHIVE, StoredBundle, path_from_uri, version_order
from lambdaserve.kernel.bundle import (
    VerifiedBundle,
    open_bundle,
    pack_bundle,
    sha256_file,
    verify_bundle,
)
from lambdaserve.kernel.errors import ModelNotFoundError, VersionExistsError
from lambdaserve.kernel.manifest import MANIFEST_FILE, Manifest

HOME_ENV = "LAMBDASERVE_HOME"


def default_store_root() -> Path:
    return Path(os.environ.get(HOME_ENV) or ".lambdaserve")


class LocalArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    @property
    def cache_dir(self) -> Path:
        return self.root / ".cache" / "bundles"

    def _version_dir(self, name: str, version: str) -> Path:
        return self.root / "models" / name / version

    def put(self, bundle_dir: Path) -> StoredBundle:
        """Verify and store a bundle under its manifest's name and version (create-only)."""
        bundle = verify_bundle(bundle_dir)
        name, version = bundle.manifest.name, bundle.manifest.version
        target = self._version_dir(name, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{version}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            pack_bundle(bundle.path, staging / ARCHIVE)
            shutil.copyfile(bundle.path / MANIFEST_FILE, staging / MANIFEST_FILE)
            try:
                staging.rename(target)  # atomic; fails when the version already exists
            except OSError as exc:
                raise VersionExistsError(
                    f"model {name} version {version} is already stored; bundles are immutable"
                ) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self._stored(name, version)

    def _stored(self, name: str, version: str) -> StoredBundle:
        directory = self._version_dir(name, version)
        manifest_path = directory / MANIFEST_FILE
        if not manifest_path.is_file():
            raise ModelNotFoundError(f"model {name} version {version} is not in {self.root}")
        manifest = Manifest.model_validate_json(manifest_path.read_bytes())
        return StoredBundle(
            name=name,
            version=version,
            uri=(directory / ARCHIVE).as_uri(),
            digest=sha256_file(manifest_path),
            manifest=manifest,
        )

    def models(self) -> list[str]:
        models_dir = self.root / "models"
        return (
            sorted(p.name for p in models_dir.iterdir() if p.is_dir())
            if models_dir.is_dir()
            else []
        )

    def versions(self, name: str) -> list[StoredBundle]:
        directory = self.root / "models" / name
        if not directory.is_dir():
            return []
        names = [p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return [self._stored(name, v) for v in sorted(names, key=version_order)]

    def next_version(self, name: str) -> str:
        numbers = [int(b.version) for b in self.versions(name) if b.version.isdigit()]
        return str(max(numbers, default=0) + 1)

    def get(self, name: str, version: str | None = None) -> StoredBundle:
        if version is not None:
            return self._stored(name, version)
        stored = self.versions(name)
        if not stored:
            known = ", ".join(self.models()) or "none"
            raise ModelNotFoundError(f"no model named {name!r} in {self.root} (models: {known})")
        return stored[-1]

    def open(
        self, name: str, version: str | None = None, *, archive_sha256: str | None = None
    ) -> VerifiedBundle:
        stored = self.get(name, version)
        return open_bundle(
            path_from_uri(stored.uri),
            cache_dir=self.cache_dir,
            expected_digest=stored.digest,
            expected_archive_sha256=archive_sha256,
        )
