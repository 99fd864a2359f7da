"""Publish a registered model version as a function version pinned to its bundle."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lambdaserve.kernel.artifacts import ArtifactStore, StoredBundle
from lambdaserve.kernel.errors import BundleIntegrityError, ModelNotFoundError
from lambdaserve.kernel.function_versions import (
    LIVE_ALIAS,
    AliasRouting,
    FunctionPublisher,
    PublishedVersion,
)
from lambdaserve.registry.model_registry import (
    CHAMPION,
    TAG_LAMBDA_FUNCTION,
    TAG_LAMBDA_VERSION,
    ModelRegistry,
    RegisteredVersion,
)

#: Recorded on the champion whose publication was the function's first deployment.
TAG_FIRST_DEPLOYMENT = "first_deployment"


@dataclass(frozen=True)
class Publication:
    model: RegisteredVersion
    published: PublishedVersion
    created: bool
    #: The live alias after this publication deployed the champion (it served no model yet).
    deployed: AliasRouting | None = None
    #: Set when live serves no model and this version is not the champion: what deploys one.
    undeployed: str | None = None


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
        return _deployed(registry, publisher, registry.get(name, version), existing, created=False)
    bundle = source.open(
        model.name, model.bundle_version or None, archive_sha256=model.archive_sha256
    )
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
    return _deployed(registry, publisher, registry.get(name, version), published, created=True)


def serves_a_model(versions: Iterable[PublishedVersion], routing: AliasRouting | None) -> bool:
    """Whether the alias routes any traffic to one of ``versions`` pinned to a bundle (the
    serving stack's bootstrap version pins none)."""
    if routing is None:
        return False
    pinned = {v.function_version for v in versions if v.bundle_sha256}
    return any(share > 0 and version in pinned for version, share in routing.shares().items())


def deploy_hint(name: str, champion_version: str | None) -> str:
    """What deploys a model when ``live`` serves none yet."""
    if champion_version is None:
        return f"promote a champion (lambdaserve models promote {name}:VERSION) and publish it"
    return f"publishing the champion deploys it (lambdaserve publish {name}:{champion_version})"


def _deployed(
    registry: ModelRegistry,
    publisher: FunctionPublisher,
    model: RegisteredVersion,
    published: PublishedVersion,
    *,
    created: bool,
) -> Publication:
    """The first deployment: when ``live`` serves no model yet (missing locally, the stack's
    bootstrap version on AWS) and this is the champion, point it at the champion, guarded by
    the alias's revision, and record it. After that only rollouts move ``live``."""
    live = publisher.alias(LIVE_ALIAS)
    if serves_a_model(publisher.versions(), live):
        return Publication(model=model, published=published, created=created)
    if CHAMPION not in model.aliases:
        return Publication(
            model=model,
            published=published,
            created=created,
            undeployed=(
                f"{LIVE_ALIAS} serves no model yet; it is deployed when the champion is "
                f"published: `lambdaserve models promote {model.name}:VERSION`, then "
                f"`lambdaserve publish {model.name}:VERSION`"
            ),
        )
    routing = publisher.point_alias(
        LIVE_ALIAS, published.function_version, live.revision_id if live else None
    )
    before = f"function version {live.version}" if live else "no alias"
    registry.set_tags(
        model.name,
        model.version,
        {TAG_FIRST_DEPLOYMENT: f"{LIVE_ALIAS}: {before} -> {published.function_version}"},
    )
    return Publication(
        model=registry.get(model.name, model.version),
        published=published,
        created=created,
        deployed=routing,
    )


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
