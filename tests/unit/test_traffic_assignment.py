"""Traffic assignment: Lambda-like random routing and sticky, salted, monotone unit assignment."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdaserve.kernel.function_versions import AliasRouting
from lambdaserve.rollout.traffic_assignment import choose_version, experiment_id, unit_bucket

pytestmark = pytest.mark.unit

N = 20_000
WEIGHTS = [0.0, 0.001, 0.05, 0.3, 0.5, 0.9, 0.999, 1.0]


def routing(weight: float) -> AliasRouting:
    return AliasRouting(alias="live", version="1", additional={"2": weight})


def within_bound(hits: int, n: int, weight: float) -> bool:
    """|p_hat - w| <= 4 standard errors of a binomial proportion (exact when w is 0 or 1)."""
    return abs(hits / n - weight) <= 4 * math.sqrt(weight * (1 - weight) / n)


@pytest.mark.parametrize("weight", WEIGHTS)
def test_random_routing_matches_the_weight(weight: float) -> None:
    rng = random.Random(7)
    picks = [choose_version(routing(weight), rng=rng) for _ in range(N)]
    assert set(picks) <= {"1", "2"}
    assert within_bound(picks.count("2"), N, weight), picks.count("2") / N


@pytest.mark.parametrize("weight", WEIGHTS)
def test_sticky_routing_matches_the_weight(weight: float) -> None:
    picks = [choose_version(routing(weight), unit_id=f"user-{i}", salt="exp-a") for i in range(N)]
    assert within_bound(picks.count("2"), N, weight), picks.count("2") / N


def test_no_additional_version_always_routes_to_the_primary() -> None:
    only = AliasRouting(alias="live", version="3")
    assert {choose_version(only, unit_id=str(i)) for i in range(100)} == {"3"}
    assert {choose_version(only, rng=random.Random(1)) for _ in range(100)} == {"3"}


def test_routing_errors_are_refused() -> None:
    with pytest.raises(ValueError, match="at most one additional version"):
        choose_version(AliasRouting("live", "1", {"2": 0.1, "3": 0.1}), unit_id="u")
    with pytest.raises(ValueError, match="not \\[0, 1\\]"):
        choose_version(AliasRouting("live", "1", {"2": 1.5}), unit_id="u")


def test_bucket_is_the_salted_sha256_golden_value() -> None:
    # sha256(b"live:1:2:user-42") starts with 50d5bba4ea63b147
    assert unit_bucket("user-42", "live:1:2") == int("50d5bba4ea63b147", 16) / 2**64
    assert unit_bucket("user-42", "live:1:2") == pytest.approx(0.315761306536287, abs=0)
    assert experiment_id(routing(0.3)) == "live:1:2"


ASSIGN_SCRIPT = """
import json
from lambdaserve.kernel.function_versions import AliasRouting
from lambdaserve.rollout.traffic_assignment import choose_version
routing = AliasRouting(alias="live", version="1", additional={"2": 0.4})
print(json.dumps([choose_version(routing, unit_id=f"unit-{i}") for i in range(1000)]))
"""


def test_sticky_assignment_is_identical_across_processes() -> None:
    runs = []
    for seed in ("0", "4242"):
        result = subprocess.run(
            [sys.executable, "-c", ASSIGN_SCRIPT],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        runs.append(json.loads(result.stdout))
    here = [choose_version(routing(0.4), unit_id=f"unit-{i}") for i in range(1000)]
    assert runs[0] == runs[1] == here
    assert 300 < here.count("2") < 500


@given(
    units=st.lists(st.text(max_size=20), min_size=1, max_size=50),
    weights=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    salt=st.text(max_size=10),
)
def test_raising_the_weight_never_moves_a_unit_back(
    units: list[str], weights: tuple[float, float], salt: str
) -> None:
    low, high = sorted(weights)
    at_low = {u for u in units if choose_version(routing(low), unit_id=u, salt=salt) == "2"}
    at_high = {u for u in units if choose_version(routing(high), unit_id=u, salt=salt) == "2"}
    assert at_low <= at_high


def test_sticky_assignment_is_stable_for_a_routing() -> None:
    for i in range(200):
        unit = f"user-{i}"
        assert len({choose_version(routing(0.5), unit_id=unit) for _ in range(5)}) == 1


def test_different_salts_reassign_independently() -> None:
    n = 10_000
    a = [choose_version(routing(0.5), unit_id=f"u{i}", salt="exp-a") for i in range(n)]
    b = [choose_version(routing(0.5), unit_id=f"u{i}", salt="exp-b") for i in range(n)]
    agree = sum(x == y for x, y in zip(a, b, strict=True))
    assert within_bound(agree, n, 0.5), agree / n  # independent arms agree half the time


def test_a_new_challenger_is_a_new_experiment_by_default() -> None:
    n = 10_000
    first = AliasRouting("live", "1", {"2": 0.5})
    second = AliasRouting("live", "1", {"3": 0.5})
    on_first = [choose_version(first, unit_id=f"u{i}") == "2" for i in range(n)]
    on_second = [choose_version(second, unit_id=f"u{i}") == "3" for i in range(n)]
    agree = sum(x == y for x, y in zip(on_first, on_second, strict=True))
    assert within_bound(agree, n, 0.5), agree / n
