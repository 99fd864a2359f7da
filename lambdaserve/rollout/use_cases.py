"""Rollout use cases: start, advance (resume), promote, roll back — with the registry kept in
step (promotion moves the MLflow ``champion`` alias) — and pruning old function versions once
a rollout ended (``prune_after``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from lambdaserve.kernel.errors import FunctionError, RolloutError
from lambdaserve.kernel.function_versions import FunctionPublisher
from lambdaserve.registry.model_registry import (
    CHALLENGER,
    CHAMPION,
    TAG_GATE_RESULT,
    ModelRegistry,
    RegisteredVersion,
)
from lambdaserve.registry.registration import promote_to_champion
from lambdaserve.rollout import controller
from lambdaserve.rollout.guard import GuardPort
from lambdaserve.rollout.live_alias import AliasPort, shares
from lambdaserve.rollout.plan import RolloutPlan
from lambdaserve.rollout.prune_report import AfterRollout
from lambdaserve.rollout.pruning import prune_after_rollout
from lambdaserve.rollout.publishing import deploy_hint
from lambdaserve.rollout.state import RolloutState, RolloutStateStore, VersionRef
from lambdaserve.rollout.version_pruning import VersionPruning


class RegistryRolloutHooks:
    """Promotion makes the challenger the MLflow champion; a rollback is recorded on it."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def promoted(self, state: RolloutState) -> None:
        name, version = state.model_name, state.challenger.model_version
        promote_to_champion(self.registry, name, version)
        self.registry.set_tags(name, version, {"rollout": "promoted"})

    def rolled_back(self, state: RolloutState, reason: str) -> None:
        self.registry.set_tags(
            state.model_name,
            state.challenger.model_version,
            {
                "rollout": "rolled_back",
                "rollout_reason": reason[:4000],
            },
        )


@dataclass(frozen=True)
class RolloutContext:
    registry: ModelRegistry
    alias: AliasPort
    guard: GuardPort
    states: RolloutStateStore
    function_name: str
    published: Callable[[], set[str]]
    clock: Callable[[], datetime]
    #: The function's versions, for pruning after a rollout ends (None: this context cannot).
    publisher: FunctionPublisher | None = None

    @property
    def hooks(self) -> RegistryRolloutHooks:
        return RegistryRolloutHooks(self.registry)


def _ref(version: RegisteredVersion, role: str) -> VersionRef:
    if version.lambda_version is None:
        raise RolloutError(
            f"{role} {version.name} v{version.version} is not published: "
            f"run lambdaserve publish {version.name}:{version.version} first"
        )
    return VersionRef(
        model_version=version.version,
        function_version=version.lambda_version,
        bundle_version=version.bundle_version,
    )


def _gate_passed(version: RegisteredVersion) -> bool:
    return CHALLENGER in version.aliases or version.tags.get(TAG_GATE_RESULT) in {
        "passed",
        "forced",
    }


def start_rollout(
    context: RolloutContext,
    name: str,
    plan: RolloutPlan,
    challenger_version: str | None = None,
    *,
    force: bool = False,
) -> RolloutState:
    """Start (or, when one is running for the same challenger, resume) a rollout.

    The target must be the ``challenger`` alias or a version with a recorded gate pass; any
    other version only with ``force``, which is recorded on it."""
    existing = context.states.load(name)
    champion = context.registry.by_alias(name, CHAMPION)
    if champion is None:
        raise RolloutError(f"{name} has no champion: lambdaserve models promote {name}:VERSION")
    challenger = (
        context.registry.get(name, challenger_version)
        if challenger_version
        else context.registry.by_alias(name, CHALLENGER)
    )
    if challenger is None:
        raise RolloutError(f"{name} has no challenger: register one that passes the gate")
    if not _gate_passed(challenger):
        result = challenger.tags.get(TAG_GATE_RESULT, "never run")
        if not force:
            raise RolloutError(
                f"{name} v{challenger.version} has not passed the promotion gate (result: "
                f"{result}): `lambdaserve register {name}:BUNDLE_VERSION --holdout CSV` runs it; "
                "--force rolls it out anyway and records that"
            )
        context.registry.set_tags(name, challenger.version, {"rollout_forced_past_gate": result})
    if existing is not None and not existing.finished:
        if existing.challenger.model_version == challenger.version and existing.plan == plan:
            return advance(context, name)  # a rerun resumes
        raise RolloutError(
            f"a {existing.plan.kind} rollout of {name} v{existing.challenger.model_version} is "
            f"{existing.status}: resume, promote or roll it back first"
        )
    _check_deployed(context, name, champion)
    state = controller.start(
        model_name=name,
        function_name=context.function_name,
        champion=_ref(champion, "champion"),
        challenger=_ref(challenger, "challenger"),
        plan=plan,
        alias=context.alias,
        published=context.published(),
        now=context.clock(),
    )
    context.states.save(state)
    return advance(context, name)


def _check_deployed(context: RolloutContext, name: str, champion: RegisteredVersion) -> None:
    """A rollout moves live from the champion: live must serve some version of the model (not
    the serving stack's bootstrap version, nor nothing)."""
    deploy = deploy_hint(name, champion.version)
    try:
        routing = context.alias.read()
    except FunctionError as exc:
        raise RolloutError(f"{exc}; {deploy}") from exc
    served = {v.lambda_version for v in context.registry.versions(name) if v.lambda_version}
    if not served & set(shares(routing)):
        raise RolloutError(
            f"live serves function version {routing.version}, which serves no registered "
            f"version of {name} (the serving stack's bootstrap): {deploy}"
        )


def _current(context: RolloutContext, name: str) -> RolloutState:
    state = context.states.load(name)
    if state is None:
        raise RolloutError(f"no rollout of {name} has been started")
    return state


def advance(context: RolloutContext, name: str) -> RolloutState:
    """One controller tick, saved before it is reported."""
    state = _current(context, name)
    if state.finished:
        reconcile_registry(context, state)
        return state
    updated = controller.tick(
        state,
        alias=context.alias,
        guard=context.guard,
        hooks=context.hooks,
        now=context.clock(),
        journal=context.states.save,
    )
    if updated != state:
        context.states.save(updated)
    return updated


def reconcile_registry(context: RolloutContext, state: RolloutState) -> bool:
    """A rollout finished unattended (the AWS state machine cannot reach the registry): move
    the MLflow champion to match what the alias now serves, and only when the alias really
    serves the promoted version at 100% (after an incident rollback by hand it does not, and
    the registry stays as it is). True when something changed."""
    if state.status != "promoted":
        return False
    champion = context.registry.by_alias(state.model_name, CHAMPION)
    if champion is not None and champion.version == state.challenger.model_version:
        return False
    if shares(context.alias.read()) != {state.challenger.function_version: 1.0}:
        return False
    context.hooks.promoted(state)
    return True


def registry_behind(context: RolloutContext, state: RolloutState) -> bool:
    """Read-only: a promoted rollout whose challenger is not yet the registry's champion."""
    if state.status != "promoted":
        return False
    champion = context.registry.by_alias(state.model_name, CHAMPION)
    return champion is None or champion.version != state.challenger.model_version


def promote_rollout(context: RolloutContext, name: str) -> RolloutState:
    state = controller.recover(_current(context, name), alias=context.alias, hooks=context.hooks)
    state = controller.promote(
        state,
        alias=context.alias,
        hooks=context.hooks,
        now=context.clock(),
        journal=context.states.save,
    )
    context.states.save(state)
    context.guard.release(state)  # after the save: the rollout is over whatever happens next
    return state


def rollback_rollout(
    context: RolloutContext, name: str, reason: str = "rolled back by hand"
) -> RolloutState:
    state = controller.rollback(
        _current(context, name),
        alias=context.alias,
        hooks=context.hooks,
        now=context.clock(),
        reason=reason,
        journal=context.states.save,
    )
    context.states.save(state)
    context.guard.release(state)  # after the save: the rollout is over whatever happens next
    return state


def prune_after(
    context: RolloutContext, state: RolloutState, keep: int | None
) -> AfterRollout | None:
    """Prune the function's old versions when ``state`` ended promoted or rolled back and a
    ``keep`` count is set (None: no pruning, and nothing to report). A failure is the result's
    warning, never an error: the rollout's outcome stands."""
    if keep is None:
        return None
    if context.publisher is None:
        return AfterRollout(warning=f"{context.function_name}: this backend cannot prune versions")
    pruning = VersionPruning(context.publisher, context.function_name, keep)
    return prune_after_rollout(pruning, context.registry, state.model_name, state.status)


def timeline(state: RolloutState) -> list[dict[str, str]]:
    return [json.loads(event.model_dump_json()) for event in state.history]
