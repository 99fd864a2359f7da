"""The live alias as the rollout controller drives it: its port, the shares it routes, and the
journaled write that moves the challenger's weight (intent saved first, then the alias written
and read back)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from lambdaserve.kernel.errors import RolloutError
from lambdaserve.kernel.function_versions import AliasRouting
from lambdaserve.rollout.state import Action, PendingWrite, RolloutEvent, RolloutState

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


def shares(routing: AliasRouting) -> dict[str, float]:
    return {v: round(w, 6) for v, w in routing.shares().items() if round(w, 6) > 0}


def write_routing(
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
    """Route ``weight`` to the challenger (all of it at 1, none at 0) on an alias still at
    ``revision``, and return the state with the event recorded. With ``journal``, the state
    with the transition pending is saved before the alias is written; an alias that reads back
    any other routing raises RolloutError."""
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
