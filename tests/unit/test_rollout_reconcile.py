"""A rollout promoted unattended on AWS moves the MLflow champion the next time someone with
registry access resumes it, and only while the alias serves that version; ``rollout status``
only reports it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from lambdaserve.kernel.function_versions import AliasRouting
from lambdaserve.registry.model_registry import CHALLENGER, CHAMPION, RegisteredVersion
from lambdaserve.rollout.plan import RolloutPlan
from lambdaserve.rollout.state import RolloutState, VersionRef
from lambdaserve.rollout.use_cases import RolloutContext, reconcile_registry, registry_behind
from tests.unit.rollout_fakes import FakeAlias

pytestmark = pytest.mark.unit


@dataclass
class FakeRegistry:
    aliases: dict[str, str] = field(default_factory=lambda: {CHAMPION: "1", CHALLENGER: "2"})
    tags: dict[str, dict[str, str]] = field(default_factory=dict)

    def _version(self, version: str) -> RegisteredVersion:
        held = tuple(a for a, v in self.aliases.items() if v == version)
        return RegisteredVersion("churn", version, "uri", "sha", aliases=held)

    def by_alias(self, name: str, alias: str) -> RegisteredVersion | None:
        return self._version(self.aliases[alias]) if alias in self.aliases else None

    def get(self, name: str, version: str) -> RegisteredVersion:
        return self._version(version)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases[alias] = version

    def delete_alias(self, name: str, alias: str) -> None:
        del self.aliases[alias]

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        self.tags.setdefault(version, {}).update(tags)


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


def _context(registry: FakeRegistry, serving: str = "2") -> RolloutContext:
    unused: Any = None
    alias = FakeAlias()
    alias.routing = AliasRouting("live", serving, {}, "r1")
    return RolloutContext(
        registry=registry,
        alias=alias,
        guard=unused,
        states=unused,  # type: ignore[arg-type]
        function_name="predict",
        published=set,
        clock=lambda: datetime.now(UTC),
    )


def test_a_promotion_done_unattended_moves_the_champion_once() -> None:
    registry = FakeRegistry()
    assert reconcile_registry(_context(registry), _state("promoted"))
    assert registry.aliases == {CHAMPION: "2"}
    assert registry.tags["2"]["rollout"] == "promoted"
    assert not reconcile_registry(_context(registry), _state("promoted"))  # nothing left to do


@pytest.mark.parametrize("status", ["running", "rolled_back", "aborted", "holding"])
def test_nothing_moves_unless_promoted(status: str) -> None:
    registry = FakeRegistry()
    assert not reconcile_registry(_context(registry), _state(status))
    assert registry.aliases == {CHAMPION: "1", CHALLENGER: "2"}


def test_after_a_rollback_by_hand_the_champion_is_not_re_crowned() -> None:
    registry = FakeRegistry()
    state = _state("promoted")  # promoted unattended, then the alias was put back on v1

    assert registry_behind(_context(registry, serving="1"), state)
    assert not reconcile_registry(_context(registry, serving="1"), state)
    assert registry.aliases == {CHAMPION: "1", CHALLENGER: "2"}
