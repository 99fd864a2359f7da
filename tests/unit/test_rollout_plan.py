"""Rollout plans are validated data: properties over many generated plans (hypothesis)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from lambdaserve.rollout.plan import RolloutPlan

pytestmark = pytest.mark.unit
open_unit = st.floats(min_value=0.001, max_value=0.999, allow_nan=False)


@given(weight=open_unit, interval=st.floats(min_value=0, max_value=3600))
def test_canary_is_one_step_then_promotion(weight: float, interval: float) -> None:
    plan = RolloutPlan.canary(weight, interval)
    assert plan.weights == (weight,)
    assert plan.promotes


@given(step=st.floats(min_value=0.01, max_value=0.99, allow_nan=False))
def test_linear_steps_increase_stay_below_one_and_cover_the_range(step: float) -> None:
    plan = RolloutPlan.linear(step, 60)
    assert plan.weights, "at least one step"
    assert all(0 < w < 1 for w in plan.weights)
    assert list(plan.weights) == sorted(set(plan.weights))
    assert 1.0 - plan.weights[-1] <= step + 1e-6  # the last step is within one step of 100%


@given(weight=st.floats(allow_nan=True, allow_infinity=True).filter(lambda w: not 0 < w < 1))
def test_weights_outside_the_open_unit_interval_are_refused(weight: float) -> None:
    with pytest.raises(ValidationError):
        RolloutPlan.canary(weight, 60)


@given(weights=st.lists(open_unit, min_size=2, max_size=6))
def test_linear_weights_must_strictly_increase(weights: list[float]) -> None:
    increasing = all(b > a for a, b in itertools.pairwise(weights))
    if increasing:
        assert RolloutPlan(kind="linear", weights=tuple(weights)).weights == tuple(weights)
    else:
        with pytest.raises(ValidationError, match="increase"):
            RolloutPlan(kind="linear", weights=tuple(weights))


def test_ab_holds_and_all_at_once_has_no_steps() -> None:
    assert not RolloutPlan.ab(0.5).promotes
    assert RolloutPlan.all_at_once().weights == ()
    with pytest.raises(ValidationError, match="no intermediate steps"):
        RolloutPlan(kind="all-at-once", weights=(0.5,))
    with pytest.raises(ValidationError, match="exactly one step"):
        RolloutPlan(kind="canary", weights=(0.1, 0.2))
    with pytest.raises(ValueError, match="strictly between"):
        RolloutPlan.linear(1.0, 60)
