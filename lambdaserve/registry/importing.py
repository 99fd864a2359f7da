"""Import a bundle trained elsewhere (the SageMaker job's ``model.tar.gz``, a ``bundle.tar.gz``
or a bundle directory, local or ``s3://``) into an artifact store, verified."""

from __future__ import annotations

from pathlib import Path

from lambdaserve.kernel.artifacts import ArtifactStore, StoredBundle
from lambdaserve.kernel.errors import VersionExistsError
from lambdaserve.serving.model_loader import BundleDownload, fetch_bundle


def import_bundle(
    store: ArtifactStore, source: str, *, cache_dir: Path, download: BundleDownload | None = None
) -> tuple[StoredBundle, bool]:
    """Verify the bundle at ``source`` (a directory, a .tar.gz, or an ``s3://`` URI of one) and
    store it under its manifest's name and version. Importing the same bundle again changes
    nothing (``created`` is False); a different bundle under a stored name and version is refused.
    """
    bundle = fetch_bundle(
        source, cache_dir=cache_dir, download=download
    )  # verifies every hash (unpacked there)
    try:
        return store.put(bundle.path), True
    except VersionExistsError:
        stored = store.get(bundle.manifest.name, bundle.manifest.version)
        if stored.digest != bundle.digest:
            raise VersionExistsError(
                f"{stored.name} version {stored.version} is already stored with another digest "
                f"({stored.digest[:12]}, this bundle {bundle.digest[:12]}); bundles are immutable"
            ) from None
        return stored, False
