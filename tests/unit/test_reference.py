"""The drift baseline: golden values for bins with open-ended outer bins and a missing bin."""

from __future__ import annotations

import numpy as np
import pytest

from lambdaserve.kernel.reference import (
    SCORE_EDGES,
    bin_counts,
    categorical_reference,
    numeric_reference,
    score_reference,
)
from lambdaserve.kernel.schema import MISSING_CATEGORY

pytestmark = pytest.mark.unit


def test_bin_counts_golden_values() -> None:
    values = np.array([-100.0, 0.0, 1.0, 1.5, 2.0, 3.0, 100.0, np.nan, np.nan])
    counts, missing = bin_counts(values, (1.0, 2.0))
    # value <= 1 | 1 < value <= 2 | value > 2 ; outer bins are open-ended
    assert counts == [3, 2, 2]
    assert missing == 2


def test_numeric_reference_uses_deciles() -> None:
    values = np.concatenate([np.arange(1.0, 101.0), [np.nan] * 5])
    reference = numeric_reference(values)
    assert reference.edges == pytest.approx((10.9, 20.8, 30.7, 40.6, 50.5, 60.4, 70.3, 80.2, 90.1))
    assert reference.counts == (10, 10, 10, 10, 10, 10, 10, 10, 10, 10)
    assert reference.missing == 5


def test_constant_and_empty_columns_do_not_break() -> None:
    assert numeric_reference(np.array([np.nan, np.nan])).counts == (0,)
    constant = numeric_reference(np.array([5.0] * 10))
    assert constant.edges == (5.0,) and constant.counts == (10, 0)


def test_categorical_reference_counts_and_missing() -> None:
    values = np.array(["a", "b", "a", MISSING_CATEGORY, "c"], dtype=object)
    reference = categorical_reference(values)
    assert reference.counts == {"a": 2, "b": 1, "c": 1}
    assert reference.missing == 1


def test_score_histogram_has_ten_bins() -> None:
    reference = score_reference(np.array([0.0, 0.05, 0.1, 0.55, 0.95, 1.0]))
    assert reference.edges == SCORE_EDGES
    assert sum(reference.counts) == 6
    assert reference.counts[0] == 3 and reference.counts[-1] == 2
