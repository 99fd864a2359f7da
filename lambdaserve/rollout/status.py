"""Registry aliases next to the live alias's routing, with every mismatch spelled out."""

from __future__ import annotations

from dataclasses import dataclass, field

from lambdaserve.kernel.function_versions import LIVE_ALIAS, AliasRouting, FunctionPublisher
from lambdaserve.registry.model_registry import (
    CHALLENGER,
    CHAMPION,
    ModelRegistry,
    RegisteredVersion,
)
from lambdaserve.rollout.publishing import deploy_hint, serves_a_model


@dataclass(frozen=True)
class RouteShare:
    function_version: str
    share: float
    model: RegisteredVersion | None


@dataclass(frozen=True)
class Status:
    name: str
    aliases: dict[str, RegisteredVersion]
    routing: AliasRouting | None
    routes: list[RouteShare] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def model_status(registry: ModelRegistry, publisher: FunctionPublisher, name: str) -> Status:
    aliases = {
        alias: version
        for alias in (CHAMPION, CHALLENGER)
        if (version := registry.by_alias(name, alias)) is not None
    }
    by_sha = {v.bundle_sha256: v for v in registry.versions(name)}
    published = {p.function_version: p for p in publisher.versions()}
    routing = publisher.alias(LIVE_ALIAS)
    problems: list[str] = []
    routes: list[RouteShare] = []
    champion = aliases.get(CHAMPION)
    deploy = deploy_hint(name, champion.version if champion is not None else None)
    if routing is None:
        problems.append(f"the function has no {LIVE_ALIAS!r} alias yet: {deploy}")
    elif not serves_a_model(published.values(), routing):
        problems.append(
            f"{LIVE_ALIAS} serves function version {routing.version}, which pins no model (the "
            f"serving stack's bootstrap): {deploy}"
        )
    else:
        for function_version, share in routing.shares().items():
            pinned = published.get(function_version)
            model = by_sha.get(pinned.bundle_sha256) if pinned else None
            routes.append(RouteShare(function_version, share, model))
            if model is None and share > 0:
                problems.append(
                    f"function version {function_version} gets {share:.0%} of traffic but serves "
                    f"no registered version of {name}"
                )
    for alias, version in aliases.items():
        if version.lambda_version is None:
            problems.append(f"{alias} v{version.version} is not published (lambdaserve publish)")
    if routing is not None and routes and champion is not None:
        if champion.lambda_version != routing.version:
            problems.append(
                f"champion v{champion.version} is not the live alias's primary version "
                f"({routing.version}); promote or roll back to reconcile"
            )
        allowed = {v.lambda_version for v in aliases.values()}
        for route in routes:
            if route.share > 0 and route.function_version not in allowed:
                problems.append(
                    f"function version {route.function_version} gets {route.share:.0%} of traffic "
                    "but is neither champion nor challenger"
                )
    return Status(name=name, aliases=aliases, routing=routing, routes=routes, problems=problems)
