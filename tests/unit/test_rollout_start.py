"""Starting a rollout: the promotion gate cannot be bypassed with ``--challenger``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from lambdaserve.kernel.errors import RolloutError
from lambdaserve.kernel.function_versions import AliasRouting
from lambdaserve.registry.model_registry import (
    CHALLENGER,
    CHAMPION,
    TAG_GATE_RESULT,
    TAG_LAMBDA_VERSION,
    RegisteredVersion,
)
from lambdaserve.rollout.plan import RolloutPlan
from lambdaserve.rollout.state import RolloutState
from lambdaserve.rollout.use_cases import RolloutContext, start_rollout
from tests.unit.rollout_fakes import FakeAlias, FakeGuard

pytestmark = pytest.mark.unit
GATE = {"1": "passed", "2": "passed", "3": "failed"}


@dataclass
class FakeRegistry:
    aliases: dict[str, str] = field(default_factory=lambda: {CHAMPION: "1", CHALLENGER: "2"})
    tags: dict[str, dict[str, str]] = field(
        default_factory=lambda: {
            v: {TAG_LAMBDA_VERSION: v, TAG_GATE_RESULT: result} for v, result in GATE.items()
        }
    )

    def get(self, name: str, version: str) -> RegisteredVersion:
        held = tuple(a for a, v in self.aliases.items() if v == version)
        return RegisteredVersion(name, version, "uri", "sha", aliases=held, tags=self.tags[version])

    def by_alias(self, name: str, alias: str) -> RegisteredVersion | None:
        return self.get(name, self.aliases[alias]) if alias in self.aliases else None

    def versions(self, name: str) -> list[RegisteredVersion]:
        return [self.get(name, version) for version in sorted(self.tags)]

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        self.tags[version] = {**self.tags[version], **tags}


@dataclass
class FakeStates:
    saved: dict[str, RolloutState] = field(default_factory=dict)

    def load(self, model_name: str) -> RolloutState | None:
        return self.saved.get(model_name)

    def save(self, state: RolloutState) -> None:
        self.saved[state.model_name] = state


def _context(registry: FakeRegistry, alias: FakeAlias) -> RolloutContext:
    return RolloutContext(
        registry=registry,  # type: ignore[arg-type]
        alias=alias,
        guard=FakeGuard(),
        states=FakeStates(),
        function_name="predict",
        published=lambda: {"1", "2", "3"},
        clock=lambda: datetime(2026, 12, 2, tzinfo=UTC),
    )


def test_a_version_the_gate_refused_is_not_rolled_out_and_nothing_moves() -> None:
    registry, alias = FakeRegistry(), FakeAlias()

    with pytest.raises(
        RolloutError, match=r"v3 has not passed the promotion gate \(result: failed"
    ):
        start_rollout(_context(registry, alias), "churn", RolloutPlan.canary(0.1, 60), "3")

    assert alias.writes == 0 and alias.routing.shares() == {"1": 1.0}


def test_force_rolls_it_out_and_records_that_it_did() -> None:
    registry, alias = FakeRegistry(), FakeAlias()

    state = start_rollout(
        _context(registry, alias), "churn", RolloutPlan.canary(0.1, 60), "3", force=True
    )

    assert state.challenger.model_version == "3" and alias.routing.shares() == {"1": 0.9, "3": 0.1}
    assert registry.tags["3"]["rollout_forced_past_gate"] == "failed"


def test_a_version_with_a_recorded_gate_pass_needs_no_force() -> None:
    registry, alias = FakeRegistry(), FakeAlias()
    del registry.aliases[CHALLENGER]

    state = start_rollout(_context(registry, alias), "churn", RolloutPlan.canary(0.1, 60), "2")

    assert state.challenger.model_version == "2"
    assert "rollout_forced_past_gate" not in registry.tags["2"]


def test_a_live_alias_on_the_bootstrap_version_names_the_first_deployment() -> None:
    """On AWS the stack's live alias starts on a version that serves no model: start used to
    say "finish or roll back the current rollout first", which no command could do."""
    registry, alias = FakeRegistry(), FakeAlias()
    alias.routing = AliasRouting("live", "9", {}, "r0")  # a version no registered model pins

    with pytest.raises(
        RolloutError,
        match=r"live serves function version 9, which serves no registered version of churn "
        r"\(the serving stack's bootstrap\): publishing the champion deploys it "
        r"\(lambdaserve publish churn:1\)",
    ):
        start_rollout(_context(registry, alias), "churn", RolloutPlan.canary(0.1, 60))
    assert alias.writes == 0
