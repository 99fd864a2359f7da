"""The rollout controller: one ``tick`` moves a rollout forward by at most one decision.

The same code drives the local alias file and the AWS Lambda alias (DESIGN decision 3). Each
tick first checks that the alias is still routed as the controller last left it (a change from
anyone else aborts, touching nothing), then the guard (any alarm rolls back to 100% champion),
then time and samples (waits), and only then shifts to the next weight or promotes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from lambdaserve.core.errors import FunctionConflictError, RolloutError
from lambdaserve.core.functions import AliasRouting
from lambdaserve.core.rollout_guard import GuardPort
from lambdaserve.core.rollout_plan import RolloutPlan
from lambdaserve.core.rollout_state import Action, RolloutEvent, RolloutState, VersionRef


class AliasPort(Protocol):
    def read(self) -> AliasRouting: ...

    def route(
        self, version: str, additional: dict[str, float], expected_revision: str
    ) -> AliasRouting:
        """Write the routing if the alias is still at ``expected_revision``; return it as read
        back after the write. Raises FunctionConflictError on a concurrent change."""
        ...


class RegistryHooks(Protocol):
    def promoted(self, state: RolloutState) -> None: ...

    def rolled_back(self, state: RolloutState, reason: str) -> None: ...


def shares(routing: AliasRouting) -> dict[str, float]:
    return {v: round(w, 6) for v, w in routing.shares().items() if round(w, 6) > 0}


def start(
    *,
    model_name: str,
    function_name: str,
    champion: VersionRef,
    challenger: VersionRef,
    plan: RolloutPlan,
    alias: AliasPort,
    published: set[str],
    now: datetime,
) -> RolloutState:
    """Validate and create a rollout; the first tick makes the first shift."""
    if champion.function_version == challenger.function_version:
        raise RolloutError("champion and challenger are the same function version")
    missing = {champion.function_version, challenger.function_version} - published
    if missing:
        raise RolloutError(f"function versions {sorted(missing)} are not published")
    current = alias.read()
    if shares(current) != {champion.function_version: 1.0}:
        raise RolloutError(
            f"the live alias routes {shares(current)}, not 100% to the champion's function version "
            f"{champion.function_version}: finish or roll back the current rollout first"
        )
    event = RolloutEvent(
        at=now,
        action="start",
        weight=0.0,
        reason=f"{plan.kind} rollout of v{challenger.model_version} over v{champion.model_version}",
    )
    return RolloutState(
        model_name=model_name,
        function_name=function_name,
        champion=champion,
        challenger=challenger,
        plan=plan,
        step_started_at=now,
        routing={champion.function_version: 1.0},
        history=(event,),
    )


def _write(
    state: RolloutState,
    alias: AliasPort,
    revision: str,
    weight: float,
    now: datetime,
    action: Action,
    reason: str,
    **changes: object,
) -> RolloutState:
    champion, challenger = state.champion.function_version, state.challenger.function_version
    if weight >= 1.0:
        written = alias.route(challenger, {}, revision)
    elif weight <= 0.0:
        written = alias.route(champion, {}, revision)
    else:
        written = alias.route(champion, {challenger: weight}, revision)
    expected = (
        {challenger: 1.0}
        if weight >= 1.0
        else (
            {champion: 1.0}
            if weight <= 0.0
            else {champion: round(1 - weight, 6), challenger: weight}
        )
    )
    if shares(written) != expected:
        raise RolloutError(f"the live alias reads back {shares(written)} after writing {expected}")
    event = RolloutEvent(at=now, action=action, weight=max(0.0, min(weight, 1.0)), reason=reason)
    return state.with_event(event, routing=expected, step_started_at=now, **changes)


def _note(
    state: RolloutState, now: datetime, action: Action, reason: str, **changes: object
) -> RolloutState:
    """Record a decision that changes no routing; repeated identical waits are recorded once."""
    last = state.history[-1] if state.history else None
    if last is not None and last.action == action and last.reason == reason and not changes:
        return state
    return state.with_event(
        RolloutEvent(at=now, action=action, weight=state.weight, reason=reason), **changes
    )


def tick(
    state: RolloutState,
    *,
    alias: AliasPort,
    guard: GuardPort,
    hooks: RegistryHooks,
    now: datetime,
) -> RolloutState:
    """One decision. A race lost on the alias while writing aborts the rollout (recorded)."""
    if state.finished:
        return state
    try:
        return _decide(state, alias=alias, guard=guard, hooks=hooks, now=now)
    except FunctionConflictError as exc:
        return _note(
            state,
            now,
            "abort",
            f"the live alias changed while the controller wrote it: {exc}",
            status="aborted",
        )


def _decide(
    state: RolloutState,
    *,
    alias: AliasPort,
    guard: GuardPort,
    hooks: RegistryHooks,
    now: datetime,
) -> RolloutState:
    current = alias.read()
    if shares(current) != state.routing:
        return _note(
            state,
            now,
            "abort",
            f"the live alias was changed outside the controller: expected {state.routing}, "
            f"found {shares(current)}; the controller changed nothing",
            status="aborted",
        )
    # The guard runs on every tick, the first included: an alarm already firing stops the
    # first shift, and the AWS guard creates the challenger's alarms before traffic moves.
    report = guard.evaluate(state, now)
    if report.alarms:
        return rollback(
            state,
            alias=alias,
            hooks=hooks,
            now=now,
            reason="guard alarm: " + "; ".join(report.alarms),
            revision=current.revision_id,
        )
    plan = state.plan
    if state.step == -1:
        if not plan.weights and plan.min_samples == 0:
            return promote(
                state,
                alias=alias,
                hooks=hooks,
                now=now,
                revision=current.revision_id,
                reason="all-at-once: guards clear",
            )
        if not plan.weights:
            # All traffic moves now, but the challenger is crowned only once it has served
            # min_samples requests under the guards (which can still roll it back).
            return _write(
                state,
                alias,
                current.revision_id,
                1.0,
                now,
                "shift",
                f"all-at-once: 100% to the challenger; promoted after {plan.min_samples} "
                "requests with guards clear",
                step=0,
            )
        return _write(
            state,
            alias,
            current.revision_id,
            plan.weights[0],
            now,
            "shift",
            f"step 1/{len(plan.weights)}: {plan.weights[0]:.0%} to the challenger",
            step=0,
        )
    if state.status == "holding":
        return state
    waited = (now - state.step_started_at).total_seconds()
    if waited < plan.interval_seconds:
        return _note(
            state, now, "wait", f"step {state.step + 1} holds {plan.interval_seconds:.0f}s"
        )
    if report.challenger_samples < plan.min_samples:
        return _note(
            state,
            now,
            "wait",
            f"step {state.step + 1}: {report.challenger_samples} of {plan.min_samples} "
            "challenger requests; waiting for enough traffic to judge",
        )
    if not plan.promotes:
        return _note(
            state,
            now,
            "hold",
            f"A/B split held at {state.weight:.0%} until stopped",
            status="holding",
        )
    if state.step + 1 < len(plan.weights):
        weight = plan.weights[state.step + 1]
        return _write(
            state,
            alias,
            current.revision_id,
            weight,
            now,
            "shift",
            f"step {state.step + 2}/{len(plan.weights)}: {weight:.0%} to the challenger "
            f"(guards clear on {report.challenger_samples} requests)",
            step=state.step + 1,
        )
    return promote(
        state,
        alias=alias,
        hooks=hooks,
        now=now,
        revision=current.revision_id,
        reason=f"guards clear on {report.challenger_samples} challenger requests",
    )


def promote(
    state: RolloutState,
    *,
    alias: AliasPort,
    hooks: RegistryHooks,
    now: datetime,
    reason: str = "promoted by hand",
    revision: str | None = None,
) -> RolloutState:
    if state.finished:
        raise RolloutError(f"the rollout is already {state.status}")
    revision = alias.read().revision_id if revision is None else revision
    done = _write(state, alias, revision, 1.0, now, "promote", reason, status="promoted")
    hooks.promoted(done)
    return done


def rollback(
    state: RolloutState,
    *,
    alias: AliasPort,
    hooks: RegistryHooks,
    now: datetime,
    reason: str = "rolled back by hand",
    revision: str | None = None,
) -> RolloutState:
    if state.finished:
        raise RolloutError(f"the rollout is already {state.status}")
    revision = alias.read().revision_id if revision is None else revision
    try:
        done = _write(state, alias, revision, 0.0, now, "rollback", reason, status="rolled_back")
    except FunctionConflictError as exc:
        raise RolloutError(f"rollback lost a race on the live alias: {exc}") from exc
    hooks.rolled_back(done, reason)
    return done
