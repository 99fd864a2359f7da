"""Register a stored bundle and decide, through the gate, whether it becomes the challenger."""

from __future__ import annotations

import json
from dataclasses import dataclass

from lambdaserve.kernel.artifacts import ArtifactStore
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.errors import InvalidInputError, LambdaserveError, PromotionRefusedError
from lambdaserve.kernel.model_trust import NO_TRUST, ModelTrust
from lambdaserve.registry.holdout_scoring import Holdout, score_on_holdout
from lambdaserve.registry.model_registry import (
    CHALLENGER,
    CHAMPION,
    TAG_GATE,
    TAG_GATE_RESULT,
    ModelRegistry,
    RegisteredVersion,
)
from lambdaserve.registry.promotion_gate import GateDecision, GatePolicy, decide


@dataclass(frozen=True)
class Registration:
    version: RegisteredVersion
    created: bool
    decision: GateDecision | None


def register_bundle(
    registry: ModelRegistry,
    store: ArtifactStore,
    name: str,
    bundle_version: str | None,
    *,
    code_version: str,
) -> tuple[RegisteredVersion, bool]:
    """Register a stored bundle (verified first); registering it again changes nothing."""
    stored = store.get(name, bundle_version)
    bundle = store.open(stored.name, stored.version)  # verifies every hash
    return registry.register(stored, bundle, code_version=code_version)


def gate_challenger(
    registry: ModelRegistry,
    store: ArtifactStore,
    candidate: RegisteredVersion,
    *,
    policy: GatePolicy,
    holdout: Holdout | None,
    force: bool = False,
    trust: ModelTrust = NO_TRUST,
) -> GateDecision:
    """Score candidate and champion on the same holdout; on a pass (or --force) the candidate
    becomes ``challenger``. The decision and its numbers are recorded on the version either way."""
    champion = registry.by_alias(candidate.name, CHAMPION)
    if champion is not None and champion.version == candidate.version:
        raise InvalidInputError(f"{candidate.name} v{candidate.version} is already the champion")
    if champion is not None and champion.task != candidate.task:
        raise InvalidInputError(
            f"{candidate.name} v{candidate.version} is a {candidate.task} model and the champion "
            f"v{champion.version} a {champion.task} one: they cannot be compared"
        )
    candidate_metrics, champion_metrics, source = _gate_metrics(
        store, candidate, champion, holdout, force=force, trust=trust
    )
    decision = decide(
        candidate_metrics,
        champion_metrics,
        policy,
        champion_version=champion.version if champion else None,
        holdout=source,
        force=force,
        task=candidate.task,
    )
    if holdout is None and champion is not None and not decision.forced:
        # Only --force let two models be compared on different rows: the decision is forced
        # even when the numbers happen to pass, and says so.
        decision = decision.model_copy(
            update={
                "forced": True,
                "reasons": (
                    *decision.reasons,
                    "forced: without --holdout the two models were not scored on the same rows",
                ),
            }
        )
    _record_decision(registry, candidate, decision)
    if not decision.accepted:
        raise PromotionRefusedError(
            f"{candidate.name} v{candidate.version} stays a candidate: "
            + "; ".join(decision.reasons)
        )
    registry.set_alias(candidate.name, CHALLENGER, candidate.version)
    return decision


def _gate_metrics(
    store: ArtifactStore,
    candidate: RegisteredVersion,
    champion: RegisteredVersion | None,
    holdout: Holdout | None,
    *,
    force: bool,
    trust: ModelTrust = NO_TRUST,
) -> tuple[dict[str, float], dict[str, float] | None, str]:
    """The candidate's and the champion's metrics, and the rows they were measured on: both
    scored on ``holdout`` when there is one; without, each model's own training holdout (with
    a champion, only under ``force``: the two are not comparable)."""
    if holdout is not None:
        candidate_metrics = score_on_holdout(_open(store, candidate), holdout, trust)
        champion_metrics = (
            score_on_holdout(_open(store, champion), holdout, trust)
            if champion is not None
            else None
        )
        return candidate_metrics, champion_metrics, holdout.description
    if champion is None:
        return candidate.metrics, None, "the candidate's own training holdout"
    if force:
        return (
            candidate.metrics,
            champion.metrics,
            "each model's own training holdout (not comparable; forced)",
        )
    raise InvalidInputError(
        f"{candidate.name} has a champion (v{champion.version}): pass --holdout CSV so both "
        "are scored on the same rows, or --force"
    )


def _record_decision(
    registry: ModelRegistry, candidate: RegisteredVersion, decision: GateDecision
) -> None:
    """Tag the candidate with the gate's decision (its JSON, cut to fit a tag) and its result."""
    registry.set_tags(
        candidate.name,
        candidate.version,
        {
            TAG_GATE: json.dumps(decision.model_dump(mode="json"), sort_keys=True)[:4900],
            TAG_GATE_RESULT: "forced"
            if decision.forced
            else ("passed" if decision.passed else "failed"),
        },
    )


@dataclass(frozen=True)
class GatedRegistration:
    """A registration and the gate's verdict on it: ``refusal`` says why the gate refused (a
    refusal is reported, not an error of registration)."""

    version: RegisteredVersion
    created: bool
    decision: GateDecision | None
    refusal: str | None


def register_and_gate(
    registry: ModelRegistry,
    store: ArtifactStore,
    name: str,
    bundle_version: str | None,
    *,
    holdout: Holdout | None,
    policy: GatePolicy,
    force: bool,
    code_version: str,
    trust: ModelTrust = NO_TRUST,
) -> GatedRegistration:
    """Register a stored bundle, then run the gate (``force`` passes it anyway, recorded)."""
    version, created = register_bundle(
        registry, store, name, bundle_version, code_version=code_version
    )
    try:
        decision = gate_challenger(
            registry, store, version, policy=policy, holdout=holdout, force=force, trust=trust
        )
        refusal = None
    except LambdaserveError as exc:
        decision, refusal = None, str(exc)
    return GatedRegistration(
        registry.get(version.name, version.version), created, decision, refusal
    )


def promote_to_champion(registry: ModelRegistry, name: str, version: str) -> RegisteredVersion:
    """Move ``champion`` to ``version`` (and clear ``challenger`` if it pointed there)."""
    target = registry.get(name, version)
    registry.set_alias(name, CHAMPION, target.version)
    if CHALLENGER in target.aliases:
        registry.delete_alias(name, CHALLENGER)
    return registry.get(name, version)


def _open(store: ArtifactStore, version: RegisteredVersion) -> VerifiedBundle:
    bundle = store.open(
        version.name, version.bundle_version or None, archive_sha256=version.archive_sha256
    )
    if bundle.digest != version.bundle_sha256:
        raise InvalidInputError(
            f"{version.name} v{version.version}: the stored bundle's sha256 differs from the "
            "registered one; the store and the registry disagree"
        )
    return bundle
