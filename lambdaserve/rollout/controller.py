"""The rollout controller: one ``tick`` moves a rollout forward by at most one decision.

The same code drives the local alias file and the AWS Lambda alias (DESIGN decision 3). Each
tick first checks that the alias is still routed as the controller last left it (a change from
anyone else aborts, touching nothing), then the guard (any alarm rolls back to 100% champion),
then time and samples (waits), and only then shifts to the next weight or promotes. Those rules
are ``decisions``; the controller reads the alias and the guard and carries out what they decide.

Every alias write is crash-safe when the caller passes ``journal`` (the state store's ``save``,
which writes under the state's If-Match): the intended transition is saved first, then the alias
is written (``live_alias.write_routing``), then the caller saves the confirmed state. A crash or
a lost race in between leaves a ``pending`` transition that the next tick finishes (the alias
already serves it) or drops (it does not yet); registry hooks are then called again, so they
must be idempotent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from lambdaserve.kernel.errors import FunctionConflictError, RolloutError
from lambdaserve.rollout import decisions
from lambdaserve.rollout.guard import GuardPort
from lambdaserve.rollout.live_alias import AliasPort, Journal, shares, write_routing
from lambdaserve.rollout.plan import RolloutPlan
from lambdaserve.rollout.state import Action, RolloutEvent, RolloutState, VersionRef


class RegistryHooks(Protocol):
    def promoted(self, state: RolloutState) -> None: ...

    def rolled_back(self, state: RolloutState, reason: str) -> None: ...


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
    """Read the alias (then the guard), ask the decision rules, carry out what they decide."""
    current = alias.read()
    decision = decisions.outside_change(state, shares(current))
    if decision is None:
        # The guard runs on every tick, the first included: an alarm already firing stops the
        # first shift, and the AWS guard creates the challenger's alarms before traffic moves.
        decision = decisions.decide(state, guard.evaluate(state, now), now)
    if decision is None:
        return state
    return _carry_out(
        state,
        decision,
        alias=alias,
        hooks=hooks,
        now=now,
        revision=current.revision_id,
        journal=journal,
    )


def _carry_out(
    state: RolloutState,
    decision: decisions.Decision,
    *,
    alias: AliasPort,
    hooks: RegistryHooks,
    now: datetime,
    revision: str,
    journal: Journal | None,
) -> RolloutState:
    """Promote, roll back or shift on the alias read at ``revision``; record anything else."""
    if decision.action in ("promote", "rollback"):
        finish = promote if decision.action == "promote" else rollback
        return finish(
            state,
            alias=alias,
            hooks=hooks,
            now=now,
            reason=decision.reason,
            revision=revision,
            journal=journal,
        )
    if decision.action == "shift":
        return write_routing(
            state,
            alias,
            revision,
            decision.weight,
            now,
            "shift",
            decision.reason,
            journal,
            step=decision.step,
        )
    changes = {} if decision.status is None else {"status": decision.status}
    return _note(state, now, decision.action, decision.reason, **changes)


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
    done = write_routing(
        state, alias, revision, 1.0, now, "promote", reason, journal, status="promoted"
    )
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
        done = write_routing(
            state, alias, revision, 0.0, now, "rollback", reason, journal, status="rolled_back"
        )
    except FunctionConflictError as exc:
        raise RolloutError(f"rollback lost a race on the live alias: {exc}") from exc
    hooks.rolled_back(done, reason)
    return done
