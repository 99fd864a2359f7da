"""Load and verify the bundle a service serves, once per execution environment."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lambdaserve.kernel.artifacts import path_from_uri
from lambdaserve.kernel.bundle import VerifiedBundle, open_bundle
from lambdaserve.kernel.errors import ArtifactStoreError
from lambdaserve.kernel.model_trust import NO_TRUST, ModelTrust
from lambdaserve.kernel.predictors import Predictor, Runtime, load_predictor

#: Fetch an ``s3://`` bundle into a cache directory; answer where it landed.
BundleDownload = Callable[[str, Path], Path]


@dataclass(frozen=True)
class LoadedModel:
    bundle: VerifiedBundle
    predictor: Predictor
    load_seconds: float
    category_sets: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.bundle.manifest.name

    @property
    def version(self) -> str:
        return self.bundle.manifest.version

    @classmethod
    def from_bundle(
        cls, bundle: VerifiedBundle, prefer: Runtime | None = None, trust: ModelTrust = NO_TRUST
    ) -> LoadedModel:
        started = time.perf_counter()
        predictor = load_predictor(bundle, prefer, trust)
        categories = {s.name: frozenset(s.categories) for s in bundle.manifest.features.categorical}
        return cls(bundle, predictor, time.perf_counter() - started, categories)


def fetch_bundle(
    uri: str,
    *,
    cache_dir: Path,
    expected_sha256: str | None = None,
    download: BundleDownload | None = None,
) -> VerifiedBundle:
    """Resolve ``file://``/path URIs, or ``s3://`` ones through ``download`` (the AWS backend's,
    chosen by the wiring); every hash is checked before returning."""
    if uri.startswith("s3://"):
        if download is None:
            raise ArtifactStoreError(f"{uri}: s3:// bundles are read by the AWS backend only")
        location = download(uri, cache_dir)
    else:
        location = path_from_uri(uri)
    return open_bundle(location, cache_dir=cache_dir, expected_digest=expected_sha256)


def load_model(
    uri: str,
    *,
    cache_dir: Path,
    expected_sha256: str | None = None,
    prefer: Runtime | None = None,
    download: BundleDownload | None = None,
    trust: ModelTrust = NO_TRUST,
) -> LoadedModel:
    bundle = fetch_bundle(
        uri, cache_dir=cache_dir, expected_sha256=expected_sha256, download=download
    )
    return LoadedModel.from_bundle(bundle, prefer, trust)
