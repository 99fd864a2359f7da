from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from lambdaserve.kernel import prediction_ids
from lambdaserve.kernel.prediction_ids import new_prediction_id, new_prediction_ids

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _restore_the_id_clock() -> Iterator[None]:
    """Ids made with a future ``now_ms`` move the module's monotonic clock; put it back so later
    tests in the same process see real time."""
    saved = (prediction_ids._last_ms, prediction_ids._last_random)
    yield
    prediction_ids._last_ms, prediction_ids._last_random = saved


ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def test_ids_are_unique_sortable_and_ulid_shaped() -> None:
    ids = new_prediction_ids(10_000)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(ULID.match(i) for i in ids)


def test_time_prefix_orders_across_milliseconds() -> None:
    early = new_prediction_id(now_ms=1_800_000_000_000)
    late = new_prediction_id(now_ms=1_800_000_000_001)
    assert early < late
    assert early[:10] == "01MCC5RM00"  # 1_800_000_000_000 ms in Crockford base32


def _decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(char)
    return value


def test_batch_random_parts_are_consecutive_and_time_prefix_is_exact() -> None:
    ids = new_prediction_ids(1000, now_ms=1_900_000_000_000)
    assert {i[:10] for i in ids} == {"01Q9GD6E00"}  # 1_900_000_000_000 in Crockford base32
    randoms = [_decode(i[10:]) for i in ids]
    assert randoms == list(range(randoms[0], randoms[0] + 1000))
    assert new_prediction_ids(0) == []
