"""In-process fakes of the rollout controller's alias and guard ports, shared by unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from lambdaserve.kernel.errors import FunctionConflictError
from lambdaserve.kernel.function_versions import AliasRouting
from lambdaserve.rollout.guard import GuardReport
from lambdaserve.rollout.state import RolloutState


class FakeAlias:
    def __init__(self) -> None:
        self.routing = AliasRouting("live", "1", {}, "r0")
        self.writes = 0

    def read(self) -> AliasRouting:
        return self.routing

    def route(
        self, version: str, additional: dict[str, float], expected_revision: str
    ) -> AliasRouting:
        if expected_revision != self.routing.revision_id:
            raise FunctionConflictError("changed")
        self.writes += 1
        self.routing = AliasRouting("live", version, dict(additional), f"r{self.writes}")
        return self.routing


@dataclass
class FakeGuard:
    alarms: tuple[str, ...] = ()
    samples: int = 1000
    released: list[RolloutState] = field(default_factory=list)

    def evaluate(self, state: RolloutState, now: datetime) -> GuardReport:
        return GuardReport(self.alarms, self.samples)

    def release(self, state: RolloutState) -> None:
        self.released.append(state)
