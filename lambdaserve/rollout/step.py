"""One unattended rollout step: what the rollout Lambda runs each time the state machine ticks.

Load the durable rollout state, run one controller tick (the same ``tick`` the CLI runs), save
the state, and say how long the state machine should wait before the next step. A laptop only
starts the rollout; AWS keeps it going.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from lambdaserve.kernel.errors import RolloutError
from lambdaserve.rollout import controller
from lambdaserve.rollout.controller import RegistryHooks
from lambdaserve.rollout.guard import GuardPort
from lambdaserve.rollout.live_alias import AliasPort
from lambdaserve.rollout.state import (
    TERMINAL,
    Action,
    RolloutEvent,
    RolloutState,
    RolloutStateStore,
    RolloutStatus,
)

#: The shortest wait between two steps: polling for samples more often only costs transitions.
MIN_WAIT_SECONDS = 30


class StepResult(BaseModel):
    """Where the rollout stands after a step, and when the next step should run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: RolloutStatus
    weight: float = Field(description="the challenger's share of traffic after this step")
    wait_seconds: int = Field(ge=0, description="until the next step; 0 when finished")
    reason: str = Field(description="the latest decision, as recorded in the state's history")

    @property
    def finished(self) -> bool:
        """Nothing is left to step: promoted, rolled back or aborted. An A/B split on hold is
        not finished: its guards are still evaluated every step (and roll it back on an alarm)
        until ``lambdaserve ab stop`` ends it."""
        return self.status in TERMINAL


class StepHooks(RegistryHooks, Protocol):
    def recorded(self, state: RolloutState) -> RolloutState:
        """``state`` with whatever the hooks recorded during the tick added to its history."""
        ...


class RecordingHooks:
    """Registry hooks for a step that cannot reach the registry: decisions go into the history.

    The rollout Lambda cannot reach MLflow (a laptop's SQLite store, or a team server outside its
    network), so a promotion or rollback it makes is recorded in the durable rollout state's
    history only. The MLflow ``champion`` alias is moved (or the rolled-back version tagged)
    when ``lambdaserve rollout status`` or ``lambdaserve rollout resume`` next runs with registry
    access.

    >>> hooks = RecordingHooks()
    >>> hooks.promoted(state)  # doctest: +SKIP
    >>> hooks.recorded(state).history[-1].reason  # doctest: +SKIP
    'registry not updated from AWS: the MLflow champion alias moves to v2 when ...'
    """

    def __init__(self) -> None:
        self._pending: list[RolloutEvent] = []

    def promoted(self, state: RolloutState) -> None:
        self._record(
            state,
            "promote",
            f"the MLflow champion alias moves to v{state.challenger.model_version}",
        )

    def rolled_back(self, state: RolloutState, reason: str) -> None:
        self._record(
            state,
            "rollback",
            f"v{state.challenger.model_version} is tagged rolled_back in MLflow",
        )

    def recorded(self, state: RolloutState) -> RolloutState:
        pending, self._pending = tuple(self._pending), []
        if not pending:
            return state
        return state.model_copy(update={"history": (*state.history, *pending)})

    def _record(self, state: RolloutState, action: Action, what: str) -> None:
        self._pending.append(
            RolloutEvent(
                at=state.history[-1].at if state.history else state.step_started_at,
                action=action,
                weight=state.weight,
                reason=(
                    f"registry not updated from AWS: {what} when `lambdaserve rollout status` "
                    "or `lambdaserve rollout resume` next runs with registry access"
                ),
            )
        )


def run_step(
    model_name: str,
    *,
    alias: AliasPort,
    guard: GuardPort,
    states: RolloutStateStore,
    hooks: StepHooks,
    now: datetime | None = None,
) -> StepResult:
    """One controller tick on the durable state of ``model_name``'s rollout, saved before it is
    reported. Raises RolloutError when no rollout was started. ``now`` defaults to the state
    store's clock (S3's on AWS), the one every controller of the rollout measures holds on."""
    state = states.load(model_name)
    if state is None:
        raise RolloutError(
            f"no rollout of {model_name} has been started: start one with "
            "`lambdaserve rollout start` (the state machine only advances it)"
        )
    now = states.now() if now is None else now
    ticked = controller.tick(
        state, alias=alias, guard=guard, hooks=hooks, now=now, journal=states.save
    )
    updated = hooks.recorded(ticked)
    if updated != state:
        states.save(updated)
    return _result(updated, now)


def _result(state: RolloutState, now: datetime) -> StepResult:
    if state.status == "holding":
        return StepResult(
            status=state.status,
            weight=state.weight,
            wait_seconds=max(MIN_WAIT_SECONDS, math.ceil(state.plan.interval_seconds)),
            reason=_decision(state),
        )
    if state.finished:
        return StepResult(
            status=state.status, weight=state.weight, wait_seconds=0, reason=_decision(state)
        )
    remaining = state.plan.interval_seconds - (now - state.step_started_at).total_seconds()
    return StepResult(
        status=state.status,
        weight=state.weight,
        wait_seconds=max(MIN_WAIT_SECONDS, math.ceil(remaining)),
        reason=state.history[-1].reason if state.history else "",
    )


def _decision(state: RolloutState) -> str:
    """Why a rollout ended: the first of the trailing events with the final action (the
    controller's decision, not what hooks recorded after it)."""
    history = state.history
    if not history:
        return ""
    first = len(history) - 1
    while first > 0 and history[first - 1].action == history[-1].action:
        first -= 1
    return history[first].reason
