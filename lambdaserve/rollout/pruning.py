"""Prune a model's published function versions with the registry in view (``lambdaserve prune``,
and the rollout commands' ``--keep-versions``): besides what the alias routes and the ``keep``
newest (``lambdaserve.rollout.version_pruning``), the versions serving the registry's champion
and challenger stay (by their ``lambda_version`` tag on this function, or by the bundle they
pin).

Once a version is gone, the registry versions recorded as published as it (``lambda_version``
on this function) lose that tag, so ``status`` and ``rollout start`` stop counting on it and
``publish`` publishes them again; tags naming a version of this function that an earlier prune
(or the rollout Lambda, which has no registry) deleted are cleared the same way. A dry run
changes nothing and reports what would go.

>>> report = prune_versions(publisher, registry, "churn", keep=2)  # doctest: +SKIP
>>> [v.function_version for v in report.deleted]  # doctest: +SKIP
['1', '2']
"""

from __future__ import annotations

from collections.abc import Sequence

from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.kernel.function_versions import LIVE_ALIAS, FunctionPublisher, PublishedVersion
from lambdaserve.registry.model_registry import (
    CHALLENGER,
    CHAMPION,
    TAG_LAMBDA_FUNCTION,
    TAG_LAMBDA_VERSION,
    ModelRegistry,
    RegisteredVersion,
)
from lambdaserve.rollout.prune_report import AfterRollout, KeepReason, PruneReport
from lambdaserve.rollout.version_pruning import (
    Holdings,
    VersionPruning,
    prune_function,
)
from lambdaserve.rollout.version_pruning import (
    prune_after_rollout as _prune_after_rollout,
)

#: Recorded on a registry version whose function version was pruned: which one it was.
TAG_PRUNED_LAMBDA_VERSION = "pruned_lambda_version"
ROLES: tuple[tuple[KeepReason, str], ...] = (("champion", CHAMPION), ("challenger", CHALLENGER))


def prune_versions(
    publisher: FunctionPublisher,
    registry: ModelRegistry | None,
    model_name: str,
    keep: int,
    dry_run: bool = False,
    *,
    function_name: str,
    alias: str = LIVE_ALIAS,
) -> PruneReport:
    """Delete the published versions of ``model_name``'s function that nothing keeps (see the
    module); without a ``registry`` only ``routed`` and ``newest`` keep."""
    models = registry.versions(model_name) if registry is not None else []
    listed: list[PublishedVersion] = []

    def holdings(published: Sequence[PublishedVersion]) -> Holdings:
        listed.extend(published)
        return Holdings(_held(published, models, function_name), _serving(published, models))

    report = prune_function(
        publisher,
        model_name,
        keep,
        dry_run,
        function_name=function_name,
        alias=alias,
        holder=holdings,
    )
    stale = _stale(models, function_name, listed, report)
    error = report.error
    if registry is not None and not dry_run:
        try:
            _untag(registry, model_name, models, stale)
        except LambdaserveError as exc:
            error = error or (
                f"the registry tags of v{', v'.join(stale)} still name deleted function versions "
                f"({exc}); pruning again updates them"
            )
    return report.model_copy(update={"untagged": stale, "error": error})


def prune_after_rollout(
    pruning: VersionPruning | None, registry: ModelRegistry, model_name: str, status: str
) -> AfterRollout | None:
    """``version_pruning.prune_after_rollout`` with the registry's champion and challenger
    kept and its tags brought up to date."""

    def prune(chosen: VersionPruning) -> PruneReport:
        return prune_versions(
            chosen.publisher,
            registry,
            model_name,
            chosen.keep,
            function_name=chosen.function_name,
            alias=chosen.alias,
        )

    return _prune_after_rollout(pruning, model_name, status, prune)


def _held(
    published: Sequence[PublishedVersion], models: list[RegisteredVersion], function: str
) -> dict[str, list[KeepReason]]:
    """The function versions serving the registry versions that hold champion and challenger:
    its ``lambda_version`` on this function, and every version pinned to its bundle."""
    held: dict[str, list[KeepReason]] = {}
    for reason, role in ROLES:
        holder = next((m for m in models if role in m.aliases), None)
        if holder is None:
            continue
        versions = {
            p.function_version for p in published if p.bundle_sha256 == holder.bundle_sha256
        }
        if holder.lambda_version and holder.tags.get(TAG_LAMBDA_FUNCTION, function) == function:
            versions.add(holder.lambda_version)
        for version in versions:
            held.setdefault(version, []).append(reason)
    return held


def _serving(
    published: Sequence[PublishedVersion], models: list[RegisteredVersion]
) -> dict[str, str]:
    """``{function version: registry version}`` by the bundle each pins."""
    by_sha = {m.bundle_sha256: m.version for m in models}
    return {
        p.function_version: by_sha[p.bundle_sha256] for p in published if p.bundle_sha256 in by_sha
    }


def _stale(
    models: list[RegisteredVersion],
    function: str,
    listed: list[PublishedVersion],
    report: PruneReport,
) -> tuple[str, ...]:
    """Registry versions recorded as published as a version of ``function`` that is gone (in a
    dry run: would be). Only numbers up to the newest listed count: a newer one was published
    after the listing."""
    deleted = {d.function_version for d in report.deleted}
    remaining = {p.function_version for p in listed} - deleted
    newest = max((int(p.function_version) for p in listed), default=0)
    return tuple(
        m.version
        for m in models
        if (number := m.lambda_version)
        and m.tags.get(TAG_LAMBDA_FUNCTION) == function
        and number.isdigit()
        and int(number) <= newest
        and number not in remaining
    )


def _untag(
    registry: ModelRegistry,
    model_name: str,
    models: list[RegisteredVersion],
    versions: tuple[str, ...],
) -> None:
    lambda_versions = {m.version: m.lambda_version or "" for m in models}
    for version in versions:
        registry.set_tags(
            model_name,
            version,
            {TAG_LAMBDA_VERSION: "", TAG_PRUNED_LAMBDA_VERSION: lambda_versions[version]},
        )
