"""Load and verify the bundle a service serves, once per execution environment."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from lambdaserve.core.artifacts import path_from_uri
from lambdaserve.core.bundle import VerifiedBundle, open_bundle
from lambdaserve.core.predictors import Predictor, Runtime, load_predictor


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
    def from_bundle(cls, bundle: VerifiedBundle, prefer: Runtime | None = None) -> LoadedModel:
        started = time.perf_counter()
        predictor = load_predictor(bundle, prefer)
        categories = {s.name: frozenset(s.categories) for s in bundle.manifest.features.categorical}
        return cls(bundle, predictor, time.perf_counter() - started, categories)


def fetch_bundle(
    uri: str, *, cache_dir: Path, expected_sha256: str | None = None
) -> VerifiedBundle:
    """Resolve ``file://``/path or ``s3://`` URIs; every hash is checked before returning."""
    if uri.startswith("s3://"):
        from lambdaserve.aws.s3_bundle_source import download_bundle

        location = download_bundle(uri, cache_dir)
    else:
        location = path_from_uri(uri)
    return open_bundle(location, cache_dir=cache_dir, expected_digest=expected_sha256)


def load_model(
    uri: str, *, cache_dir: Path, expected_sha256: str | None = None, prefer: Runtime | None = None
) -> LoadedModel:
    return LoadedModel.from_bundle(
        fetch_bundle(uri, cache_dir=cache_dir, expected_sha256=expected_sha256), prefer
    )
