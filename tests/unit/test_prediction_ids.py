from __future__ import annotations

import re

import pytest

from lambdaserve.core.prediction_ids import new_prediction_id, new_prediction_ids

pytestmark = pytest.mark.unit
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
