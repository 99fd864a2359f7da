"""``gate_challenger``: what --force records when it is what let the candidate through."""

from __future__ import annotations

import json

import pytest

from lambdaserve.registry.model_registry import CHALLENGER, CHAMPION, TAG_GATE, RegisteredVersion
from lambdaserve.registry.promotion_gate import GatePolicy
from lambdaserve.registry.registration import gate_challenger
from tests.support.fakes import MemoryRegistry

pytestmark = pytest.mark.unit

GOOD = {"roc_auc": 0.9, "log_loss": 0.3, "brier": 0.1}


def _version(number: str) -> RegisteredVersion:
    return RegisteredVersion("churn", number, f"file:///b/{number}", "a" * 64, metrics=GOOD)


def test_force_without_a_shared_holdout_is_recorded_as_forced_even_when_the_numbers_pass() -> None:
    registry = MemoryRegistry(_version("1"), _version("2"))
    registry.aliases[CHAMPION] = "1"

    decision = gate_challenger(
        registry,
        None,  # no holdout: the store is never read
        registry.get("churn", "2"),
        policy=GatePolicy(),
        holdout=None,
        force=True,
    )

    assert decision.passed and decision.forced and decision.accepted
    assert "not scored on the same rows" in decision.reasons[-1]
    assert registry.tags["2"]["promotion_gate_result"] == "forced"
    assert json.loads(registry.tags["2"][TAG_GATE])["forced"] is True
    assert registry.aliases[CHALLENGER] == "2"


def test_a_first_model_passing_on_its_own_holdout_is_not_forced() -> None:
    registry = MemoryRegistry(_version("1"))

    decision = gate_challenger(
        registry,
        None,
        registry.get("churn", "1"),
        policy=GatePolicy(),
        holdout=None,
        force=True,
    )

    assert decision.passed and not decision.forced
    assert registry.tags["1"]["promotion_gate_result"] == "passed"
