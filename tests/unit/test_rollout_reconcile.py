"""A rollout promoted unattended on AWS moves the MLflow champion the next time someone with
registry access resumes it, and only while the alias serves that version; ``rollout status``
only reports it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lambdaserve.kernel.function_versions import AliasRouting
from lambdaserve.registry.model_registry import CHALLENGER, CHAMPION
from lambdaserve.rollout.plan import RolloutPlan
from lambdaserve.rollout.state import RolloutState, VersionRef
from lambdaserve.rollout.use_cases import RolloutContext, reconcile_registry, registry_behind
from tests.support.fakes import FakeAlias, FakeGuard, MemoryRegistry, MemoryStates

pytestmark = pytest.mark.unit


def _state(status: str) -> RolloutState:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    return RolloutState(
        model_name="churn",
        function_name="predict",
        champion=VersionRef(model_version="1", function_version="1"),
        challenger=VersionRef(model_version="2", function_version="2"),
        plan=RolloutPlan.canary(0.1, 60),
        status=status,  # type: ignore[arg-type]
        step_started_at=now,
        routing={"2": 1.0},
    )


def _registry() -> MemoryRegistry:
    return MemoryRegistry.numbered({"1": {}, "2": {}}, aliases={CHAMPION: "1", CHALLENGER: "2"})


def _context(registry: MemoryRegistry, serving: str = "2") -> RolloutContext:
    alias = FakeAlias()
    alias.routing = AliasRouting("live", serving, {}, "r1")
    return RolloutContext(
        registry=registry,
        alias=alias,
        guard=FakeGuard(),
        states=MemoryStates(),
        function_name="predict",
        published=set,
        clock=lambda: datetime.now(UTC),
    )


def test_a_promotion_done_unattended_moves_the_champion_once() -> None:
    registry = _registry()
    assert reconcile_registry(_context(registry), _state("promoted"))
    assert registry.aliases == {CHAMPION: "2"}
    assert registry.tags["2"]["rollout"] == "promoted"
    assert not reconcile_registry(_context(registry), _state("promoted"))  # nothing left to do


@pytest.mark.parametrize("status", ["running", "rolled_back", "aborted", "holding"])
def test_nothing_moves_unless_promoted(status: str) -> None:
    registry = _registry()
    assert not reconcile_registry(_context(registry), _state(status))
    assert registry.aliases == {CHAMPION: "1", CHALLENGER: "2"}


def test_after_a_rollback_by_hand_the_champion_is_not_re_crowned() -> None:
    registry = _registry()
    state = _state("promoted")  # promoted unattended, then the alias was put back on v1

    assert registry_behind(_context(registry, serving="1"), state)
    assert not reconcile_registry(_context(registry, serving="1"), state)
    assert registry.aliases == {CHAMPION: "1", CHALLENGER: "2"}
