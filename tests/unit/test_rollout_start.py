"""Starting a rollout: the promotion gate cannot be bypassed with ``--challenger``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lambdaserve.kernel.errors import RolloutError
from lambdaserve.kernel.function_versions import AliasRouting
from lambdaserve.registry.model_registry import (
    CHALLENGER,
    CHAMPION,
    TAG_GATE_RESULT,
    TAG_LAMBDA_VERSION,
)
from lambdaserve.rollout.plan import RolloutPlan
from lambdaserve.rollout.use_cases import RolloutContext, start_rollout
from tests.support.fakes import FakeAlias, FakeGuard, MemoryRegistry, MemoryStates

pytestmark = pytest.mark.unit
GATE = {"1": "passed", "2": "passed", "3": "failed"}


def _registry() -> MemoryRegistry:
    return MemoryRegistry.numbered(
        {v: {TAG_LAMBDA_VERSION: v, TAG_GATE_RESULT: result} for v, result in GATE.items()},
        aliases={CHAMPION: "1", CHALLENGER: "2"},
    )


def _context(registry: MemoryRegistry, alias: FakeAlias) -> RolloutContext:
    return RolloutContext(
        registry=registry,
        alias=alias,
        guard=FakeGuard(),
        states=MemoryStates(),
        function_name="predict",
        published=lambda: {"1", "2", "3"},
        clock=lambda: datetime(2026, 12, 2, tzinfo=UTC),
    )


def test_a_version_the_gate_refused_is_not_rolled_out_and_nothing_moves() -> None:
    registry, alias = _registry(), FakeAlias()

    with pytest.raises(
        RolloutError, match=r"v3 has not passed the promotion gate \(result: failed"
    ):
        start_rollout(_context(registry, alias), "churn", RolloutPlan.canary(0.1, 60), "3")

    assert alias.writes == 0 and alias.routing.shares() == {"1": 1.0}


def test_force_rolls_it_out_and_records_that_it_did() -> None:
    registry, alias = _registry(), FakeAlias()

    state = start_rollout(
        _context(registry, alias), "churn", RolloutPlan.canary(0.1, 60), "3", force=True
    )

    assert state.challenger.model_version == "3" and alias.routing.shares() == {"1": 0.9, "3": 0.1}
    assert registry.tags["3"]["rollout_forced_past_gate"] == "failed"


def test_a_version_with_a_recorded_gate_pass_needs_no_force() -> None:
    registry, alias = _registry(), FakeAlias()
    del registry.aliases[CHALLENGER]

    state = start_rollout(_context(registry, alias), "churn", RolloutPlan.canary(0.1, 60), "2")

    assert state.challenger.model_version == "2"
    assert "rollout_forced_past_gate" not in registry.tags["2"]


def test_a_live_alias_on_the_bootstrap_version_names_the_first_deployment() -> None:
    """On AWS the stack's live alias starts on a version that serves no model: start used to
    say "finish or roll back the current rollout first", which no command could do."""
    registry, alias = _registry(), FakeAlias()
    alias.routing = AliasRouting("live", "9", {}, "r0")  # a version no registered model pins

    with pytest.raises(
        RolloutError,
        match=r"live serves function version 9, which serves no registered version of churn "
        r"\(the serving stack's bootstrap\): publishing the champion deploys it "
        r"\(lambdaserve publish churn:1\)",
    ):
        start_rollout(_context(registry, alias), "churn", RolloutPlan.canary(0.1, 60))
    assert alias.writes == 0
