"""Durable rollout state: the plan, where it is, and a timeline of every decision."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from lambdaserve.rollout.plan import RolloutPlan

RolloutStatus = Literal["running", "holding", "promoted", "rolled_back", "aborted"]
TERMINAL: frozenset[str] = frozenset({"promoted", "rolled_back", "aborted"})
Action = Literal["start", "shift", "wait", "hold", "promote", "rollback", "abort"]


class VersionRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_version: str = Field(description="registry version")
    function_version: str
    bundle_version: str = Field(default="", description="the bundle manifest's version")


class RolloutEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    action: Action
    weight: float = Field(description="challenger share after this event")
    reason: str


class PendingWrite(BaseModel):
    """A transition recorded in the durable state (under its If-Match) before the controller
    writes the alias, and cleared once the write is confirmed. A crash or a lost race between
    the two leaves it behind: the next tick finishes the transition when the alias already
    serves ``routing``, and drops it when the alias still serves the state's routing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    routing: dict[str, float]
    event: RolloutEvent
    step: int
    status: RolloutStatus


class RolloutState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_name: str
    function_name: str
    champion: VersionRef
    challenger: VersionRef
    plan: RolloutPlan
    step: int = Field(default=-1, description="index into plan.weights; -1 before the first")
    status: RolloutStatus = "running"
    step_started_at: datetime
    routing: dict[str, float] = Field(description="the alias routing the controller last wrote")
    history: tuple[RolloutEvent, ...] = ()
    pending: PendingWrite | None = Field(
        default=None, description="a transition recorded before its alias write, until confirmed"
    )

    @property
    def weight(self) -> float:
        return self.routing.get(self.challenger.function_version, 0.0)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def with_event(self, event: RolloutEvent, **changes: object) -> RolloutState:
        return self.model_copy(update={"history": (*self.history, event), **changes})


class RolloutStateStore(Protocol):
    def load(self, model_name: str) -> RolloutState | None: ...

    def save(self, state: RolloutState) -> None: ...

    def now(self) -> datetime:
        """The rollout's one time source: every controller of it (a laptop, the rollout
        Lambda) measures holds on this clock, read after ``load``."""
        ...
