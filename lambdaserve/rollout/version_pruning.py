"""Prune a function's published versions by what it can check itself: what the alias routes and
how new each version is. Each publish adds a version, and they would pile up forever (the
code-storage quota; with SnapStart a cache charge per active version).

A version is kept when the alias (``live``) points at it, as its primary or weighted additional
version (a weight of 0 included: Lambda refuses deleting any version an alias references; this
covers the serving stack's bootstrap version while ``live`` still starts on it), when it is
among the ``keep`` newest published versions by number, or when the caller holds it (the
registry's champion and challenger: ``lambdaserve.rollout.pruning``). Everything else is deleted,
oldest first (``$LATEST`` is never a published version). Right before each deletion the alias is
read again and a version it now routes is skipped; a deletion the function refuses because an
alias points at it is a skip too, never a failure. A dry run deletes nothing.

The rollout Lambda prunes with these rules alone (it cannot reach the registry) once a step ends
a rollout: ``prune_after_rollout``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from lambdaserve.kernel.errors import (
    FunctionError,
    FunctionVersionInUseError,
    LambdaserveError,
    PruneError,
)
from lambdaserve.kernel.function_versions import LIVE_ALIAS, FunctionPublisher, PublishedVersion
from lambdaserve.rollout.prune_report import (
    AfterRollout,
    KeepReason,
    KeptVersion,
    PrunedVersion,
    PruneReport,
    SkippedVersion,
)

#: The rollout endings after which old versions are pruned (an abort leaves things as they are).
PRUNE_AFTER: frozenset[str] = frozenset({"promoted", "rolled_back"})


@dataclass(frozen=True)
class Holdings:
    """What a caller keeps besides routing and age: reasons per function version, and which
    registry version each function version serves (for the report)."""

    held: Mapping[str, Sequence[KeepReason]]
    served: Mapping[str, str]


#: The caller's holdings, given the published versions (oldest first).
Holder = Callable[[Sequence[PublishedVersion]], Holdings]


def prune_function(
    publisher: FunctionPublisher,
    model_name: str,
    keep: int,
    dry_run: bool = False,
    *,
    function_name: str,
    alias: str = LIVE_ALIAS,
    holder: Holder | None = None,
) -> PruneReport:
    """Delete the published versions that neither ``alias`` routes, nor ``holder`` holds, nor
    are among the ``keep`` newest; the report says what was kept (and why) and deleted."""
    if keep < 1:
        raise PruneError(f"keep must be at least 1 (the newest version), not {keep}")
    published = sorted(publisher.versions(), key=lambda v: int(v.function_version))
    holdings = holder(published) if holder is not None else Holdings({}, {})
    reasons = _keep_reasons(publisher, published, alias, keep, holdings.held)
    served = holdings.served
    kept = tuple(
        KeptVersion(function_version=v, reasons=tuple(why), model_version=served.get(v))
        for v, why in sorted(reasons.items(), key=lambda item: int(item[0]))
    )
    planned = [p.function_version for p in published if p.function_version not in reasons]
    report = PruneReport(
        model_name=model_name, function_name=function_name, keep=keep, dry_run=dry_run, kept=kept
    )
    if dry_run:
        return report.model_copy(update={"deleted": _pruned(planned, served)})
    deleted, skipped, error = _delete(publisher, planned, alias)
    return report.model_copy(
        update={"deleted": _pruned(deleted, served), "skipped": skipped, "error": error}
    )


@dataclass(frozen=True)
class VersionPruning:
    """What prunes a model's function once its rollout ends: the function, and how many of its
    newest versions to keep besides the ones in use."""

    publisher: FunctionPublisher
    function_name: str
    keep: int
    alias: str = LIVE_ALIAS

    def run(self, model_name: str) -> PruneReport:
        """Prune by routing and age alone (no registry)."""
        return prune_function(
            self.publisher,
            model_name,
            self.keep,
            function_name=self.function_name,
            alias=self.alias,
        )


def prune_after_rollout(
    pruning: VersionPruning | None,
    model_name: str,
    status: str,
    prune: Callable[[VersionPruning], PruneReport] | None = None,
) -> AfterRollout | None:
    """Prune (``prune``, default ``pruning.run``) when a rollout ended promoted or rolled back;
    None when it did not, or when no keep count is configured. Never raises a LambdaserveError:
    a failure is the result's warning, and the rollout's outcome stands."""
    if pruning is None or status not in PRUNE_AFTER:
        return None
    function = pruning.function_name
    try:
        report = prune(pruning) if prune is not None else pruning.run(model_name)
    except LambdaserveError as exc:
        return AfterRollout(warning=f"pruning old versions of {function} failed: {exc}")
    warning = f"pruning old versions of {function}: {report.error}" if report.error else None
    return AfterRollout(report=report, warning=warning)


def _keep_reasons(
    publisher: FunctionPublisher,
    published: Sequence[PublishedVersion],
    alias: str,
    keep: int,
    held: Mapping[str, Sequence[KeepReason]],
) -> dict[str, list[KeepReason]]:
    numbers = [p.function_version for p in published]
    reasons: dict[str, list[KeepReason]] = {}
    routing = publisher.alias(alias)
    routed = routing.routed() if routing is not None else set()
    for version in numbers:
        why: list[KeepReason] = ["routed"] if version in routed else []
        why += held.get(version, ())
        if why:
            reasons[version] = why
    for version in numbers[-keep:]:
        reasons.setdefault(version, []).append("newest")
    return reasons


def _delete(
    publisher: FunctionPublisher, planned: list[str], alias: str
) -> tuple[tuple[str, ...], tuple[SkippedVersion, ...], str | None]:
    """Delete ``planned`` oldest first, each after reading the alias again; stop at the first
    failure that is not a refusal because an alias points at the version."""
    deleted: list[str] = []
    skipped: list[SkippedVersion] = []
    for version in planned:
        try:
            routing = publisher.alias(alias)
            if routing is not None and version in routing.routed():
                reason = f"{alias} routes it now (changed while pruning)"
                skipped.append(SkippedVersion(function_version=version, reason=reason))
                continue
            publisher.delete_version(version)
        except FunctionVersionInUseError as exc:
            skipped.append(SkippedVersion(function_version=version, reason=str(exc)))
            continue
        except FunctionError as exc:
            error = f"deleting version {version} failed, pruning stopped: {exc}"
            return tuple(deleted), tuple(skipped), error
        deleted.append(version)
    return tuple(deleted), tuple(skipped), None


def _pruned(versions: Sequence[str], served: Mapping[str, str]) -> tuple[PrunedVersion, ...]:
    return tuple(PrunedVersion(function_version=v, model_version=served.get(v)) for v in versions)
