"""The rollout controller: one ``tick`` moves a rollout forward by at most one decision.

The same code drives the local alias file and the AWS Lambda alias (DESIGN decision 3). Each
tick first checks that the alias is still routed as the controller last left it (a change from
anyone else aborts, touching nothing), then the guard (any alarm rolls back to 100% champion),
then time and samples (waits), and only then shifts to the next weight or promotes.

Every alias write is crash-safe when the caller passes ``journal`` (the state store's ``save``,
which writes under the state's If-Match): the intended transition is saved first, then the alias
is written, then the caller saves the confirmed state. A crash or a lost race in between leaves
a ``pending`` transition that the next tick finishes (the alias already serves it) or drops (it
does not yet); registry hooks are then called again, so they must be idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from lambdaserve.kernel.errors import FunctionConflictError, RolloutError
from lambdaserve.kernel.function_versions import AliasRouting
from lambdaserve.rollout.guard import GuardPort
from lambdaserve.rollout.plan import RolloutPlan
from lambdaserve.rollout.state import (
    Action,
    PendingWrite,
    RolloutEvent,
    RolloutState,
    VersionRef,
)

#: Saves a state durably before the alias is written (``RolloutStateStore.save``).
Journal = Callable[[RolloutState], None]


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
    journal: Journal | None = None,
    **changes: object,
) -> RolloutState:
    champion, challenger = state.champion.function_version, state.challenger.function_version
    additional: dict[str, float]
    if weight >= 1.0:
        primary, additional = challenger, {}
    elif weight <= 0.0:
        primary, additional = champion, {}
    else:
        primary, additional = champion, {challenger: weight}
    expected = {primary: round(1 - sum(additional.values()), 6), **additional}
    event = RolloutEvent(at=now, action=action, weight=max(0.0, min(weight, 1.0)), reason=reason)
    done = state.with_event(event, routing=expected, step_started_at=now, pending=None, **changes)
    if journal is not None:
        # Intent first: if this save loses a race, nothing was written to the alias.
        pending = PendingWrite(routing=expected, event=event, step=done.step, status=done.status)
        journal(state.model_copy(update={"pending": pending}))
    written = alias.route(primary, additional, revision)
    if shares(written) != expected:
        raise RolloutError(f"the live alias reads back {shares(written)} after writing {expected}")
    return done


def recover(state: RolloutState, *, alias: AliasPort, hooks: RegistryHooks) -> RolloutState:
    """Finish or drop the transition a crash (or a lost race) left between intent and alias.

    The alias already serves the pending routing: the transition happened, so it is completed
    (and a promotion's or rollback's registry hook called again). The alias still serves the
    state's routing: the write never happened, so the intent is dropped and the tick decides
    afresh. Anything else is someone else's change, which the tick then aborts on."""
    pending = state.pending
    if pending is None:
        return state
    current = shares(alias.read())
    if current == pending.routing:
        done = state.with_event(
            pending.event,
            routing=pending.routing,
            step_started_at=pending.event.at,
            step=pending.step,
            status=pending.status,
            pending=None,
        )
        if pending.event.action == "promote":
            hooks.promoted(done)
        elif pending.event.action == "rollback":
            hooks.rolled_back(done, pending.event.reason)
        return done
    if current == state.routing:
        return state.model_copy(update={"pending": None})
    return state


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
    journal: Journal | None = None,
) -> RolloutState:
    """One decision. A race lost on the alias while writing aborts the rollout (recorded).

    With ``journal``, the intended transition is saved before the alias is written (see the
    module docstring); a transition a crash left pending is finished or dropped first. The
    tick that finishes a rollout (promoted, rolled back or aborted) releases its guard."""
    if state.finished:
        return state
    # One clock, but read by several controllers: S3's Date has one-second resolution, so a
    # reading can fall up to a second before what the previous controller recorded. Time never
    # runs backwards within a rollout (or an interval of 0 would hold on it).
    now = max(now, state.step_started_at, *(event.at for event in state.history[-1:]))
    state = recover(state, alias=alias, hooks=hooks)
    if not state.finished:
        try:
            state = _decide(state, alias=alias, guard=guard, hooks=hooks, now=now, journal=journal)
        except FunctionConflictError as exc:
            state = _note(
                state,
                now,
                "abort",
                f"the live alias changed while the controller wrote it: {exc}",
                status="aborted",
            )
    if state.finished:
        # Nothing guards a finished rollout: remove what the guard created for it. A failure
        # here leaves the state unsaved; the next tick finishes the journaled transition (or
        # decides the abort again) and releases again (release is idempotent).
        guard.release(state)
    return state


def _decide(
    state: RolloutState,
    *,
    alias: AliasPort,
    guard: GuardPort,
    hooks: RegistryHooks,
    now: datetime,
    journal: Journal | None,
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
            journal=journal,
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
                journal=journal,
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
                journal=journal,
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
            journal=journal,
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
            journal=journal,
        )
    return promote(
        state,
        alias=alias,
        hooks=hooks,
        now=now,
        revision=current.revision_id,
        reason=f"guards clear on {report.challenger_samples} challenger requests",
        journal=journal,
    )


def promote(
    state: RolloutState,
    *,
    alias: AliasPort,
    hooks: RegistryHooks,
    now: datetime,
    reason: str = "promoted by hand",
    revision: str | None = None,
    journal: Journal | None = None,
) -> RolloutState:
    if state.finished:
        raise RolloutError(f"the rollout is already {state.status}")
    revision = alias.read().revision_id if revision is None else revision
    done = _write(state, alias, revision, 1.0, now, "promote", reason, journal, status="promoted")
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
    journal: Journal | None = None,
) -> RolloutState:
    """Return the alias to 100% champion, whatever the state and the alias say (the way out of
    a crash, a race or a change by hand), except after a promotion: the champion in the
    registry has moved, and going back is a rollout of the earlier version."""
    if state.status == "promoted":
        raise RolloutError(
            f"the rollout was promoted: v{state.challenger.model_version} is the champion; to "
            f"go back, roll out v{state.champion.model_version} (`lambdaserve rollout start "
            f"{state.model_name} --challenger {state.champion.model_version}`)"
        )
    current = alias.read()
    champion_only = {state.champion.function_version: 1.0}
    if state.finished and shares(current) == champion_only:
        raise RolloutError(
            f"the rollout is already {state.status} and the live alias serves 100% champion "
            f"(function version {state.champion.function_version})"
        )
    if state.finished:
        reason = (
            f"{reason} (the rollout was {state.status}, but the alias routed {shares(current)})"
        )
    # A rollback never waits for a pending transition: it overrides it.
    state = state.model_copy(update={"pending": None})
    revision = current.revision_id if revision is None else revision
    try:
        done = _write(
            state, alias, revision, 0.0, now, "rollback", reason, journal, status="rolled_back"
        )
    except FunctionConflictError as exc:
        raise RolloutError(f"rollback lost a race on the live alias: {exc}") from exc
    hooks.rolled_back(done, reason)
    return done
