"""The promotion gate: absolute thresholds, comparison with the champion, recorded numbers."""

from __future__ import annotations

import pytest

from lambdaserve.registry.promotion_gate import NO_METRICS, GatePolicy, decide

pytestmark = pytest.mark.unit
POLICY = GatePolicy(
    minimums={"roc_auc": 0.7}, maximums={"brier": 0.2}, compare=("roc_auc", "brier"), tolerance=0.01
)
GOOD = {"roc_auc": 0.85, "brier": 0.12}


def test_first_candidate_needs_only_the_thresholds() -> None:
    decision = decide(GOOD, None, POLICY)
    assert decision.passed and decision.accepted and not decision.forced
    assert decision.reasons == ("meets every threshold",)
    assert decision.candidate == GOOD and decision.champion is None


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        ({"roc_auc": 0.65, "brier": 0.1}, "roc_auc 0.6500 is below the minimum 0.7000"),
        ({"roc_auc": 0.9, "brier": 0.3}, "brier 0.3000 is above the maximum 0.2000"),
        ({"brier": 0.1}, "roc_auc missing is below the minimum 0.7000"),
    ],
)
def test_thresholds(candidate: dict[str, float], reason: str) -> None:
    decision = decide(candidate, None, POLICY)
    assert not decision.passed
    assert reason in decision.reasons


def test_within_tolerance_of_the_champion_passes() -> None:
    decision = decide({"roc_auc": 0.845, "brier": 0.125}, GOOD, POLICY, champion_version="3")
    assert decision.passed
    assert decision.champion_version == "3"


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        (
            {"roc_auc": 0.83, "brier": 0.12},
            "roc_auc 0.8300 is worse than champion 0.8500 by 0.0200 (tolerance 0.0100)",
        ),
        (
            {"roc_auc": 0.85, "brier": 0.14},
            "brier 0.1400 is worse than champion 0.1200 by 0.0200 (tolerance 0.0100)",
        ),
    ],
)
def test_worse_than_the_champion_fails_either_direction(
    candidate: dict[str, float], reason: str
) -> None:
    decision = decide(candidate, GOOD, POLICY)
    assert not decision.passed
    assert decision.reasons == (reason,)


def test_better_is_never_a_failure() -> None:
    assert decide({"roc_auc": 0.99, "brier": 0.01}, GOOD, POLICY).passed


def test_force_is_recorded() -> None:
    decision = decide({"roc_auc": 0.5, "brier": 0.5}, GOOD, POLICY, force=True)
    assert not decision.passed and decision.forced and decision.accepted
    assert decision.reasons[-1] == "forced past the gate (--force)"
    assert decide(GOOD, None, POLICY, force=True).forced is False  # nothing to force


def test_a_model_saved_without_a_holdout_is_told_how_to_get_metrics() -> None:
    decision = decide({}, None, GatePolicy())
    assert not decision.passed
    assert decision.reasons == (NO_METRICS,)
    assert "eval_set" in NO_METRICS and "--holdout" in NO_METRICS
