"""Publish a registered model version as a function version pinned to its bundle."""

from __future__ import annotations

from dataclasses import dataclass

from lambdaserve.core.artifacts import ArtifactStore, StoredBundle
from lambdaserve.core.errors import BundleIntegrityError, ModelNotFoundError
from lambdaserve.core.functions import FunctionPublisher, PublishedVersion
from lambdaserve.core.registry import (
    TAG_LAMBDA_FUNCTION,
    TAG_LAMBDA_VERSION,
    ModelRegistry,
    RegisteredVersion,
)


@dataclass(frozen=True)
class Publication:
    model: RegisteredVersion
    published: PublishedVersion
    created: bool


def publish_model_version(
    registry: ModelRegistry,
    source: ArtifactStore,
    target: ArtifactStore,
    publisher: FunctionPublisher,
    name: str,
    version: str,
    *,
    function_name: str,
) -> Publication:
    """Idempotent: a bundle already published returns its function version and changes nothing.
    The bundle is verified (every hash, and its digest against the registry) before anything
    changes; on AWS it is uploaded to the artifact bucket first when it is not there yet."""
    model = registry.get(name, version)
    existing = publisher.find(model.bundle_sha256)
    if existing is not None:
        _record(registry, model, existing, function_name)
        return Publication(model=registry.get(name, version), published=existing, created=False)
    bundle = source.open(model.name, model.bundle_version or None)
    if bundle.digest != model.bundle_sha256:
        raise BundleIntegrityError(
            f"{name} v{version}: the stored bundle's sha256 {bundle.digest[:12]} differs from the "
            f"registered {model.bundle_sha256[:12]}; nothing was published"
        )
    stored = _in_target(target, bundle.manifest.name, bundle.manifest.version, model)
    if stored is None:
        stored = target.put(bundle.path)
    published = publisher.publish(
        bundle_uri=stored.uri,
        bundle_sha256=stored.digest,
        description=f"{name} v{version} bundle {bundle.manifest.version} "
        f"sha256 {stored.digest[:16]}",
    )
    _record(registry, model, published, function_name)
    return Publication(model=registry.get(name, version), published=published, created=True)


def _in_target(
    target: ArtifactStore, name: str, bundle_version: str, model: RegisteredVersion
) -> StoredBundle | None:
    try:
        stored = target.get(name, bundle_version)
    except ModelNotFoundError:
        return None
    if stored.digest != model.bundle_sha256:
        raise BundleIntegrityError(
            f"{stored.uri} already holds a different bundle for {name} version {bundle_version}; "
            "nothing was published"
        )
    return stored


def _record(
    registry: ModelRegistry, model: RegisteredVersion, published: PublishedVersion, function: str
) -> None:
    if model.lambda_version != published.function_version:
        registry.set_tags(
            model.name,
            model.version,
            {
                TAG_LAMBDA_VERSION: published.function_version,
                TAG_LAMBDA_FUNCTION: function,
                "published_bundle_uri": published.bundle_uri,
            },
        )
