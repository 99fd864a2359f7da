"""Drift statistics: golden values worked by hand, mergeable windows, verdicts and alarm rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

from lambdaserve.drift.dataset_verdict import (
    benjamini_hochberg,
    dataset_drift,
    fdr_drifted,
    persistent_drift,
)
from lambdaserve.drift.histograms import (
    CategoricalWindow,
    FeatureWindows,
    NumericWindow,
    ScoreWindow,
    aligned_bins,
)
from lambdaserve.drift.statistics import (
    PSI_EPSILON,
    SCORE_FEATURE,
    STAT_TESTS,
    DriftResult,
    StatTest,
    chi2_p_value,
    compare,
    js_distance,
    psi,
    psi_on_bins,
)
from lambdaserve.kernel.reference import (
    SCORE_EDGES,
    CategoricalReference,
    NumericReference,
    ReferenceProfile,
    ScoreReference,
)
from lambdaserve.kernel.schema import MISSING_CATEGORY

pytestmark = pytest.mark.unit

EDGES = (1.0, 2.0)  # bins: v <= 1 | 1 < v <= 2 | v > 2


# --- PSI ------------------------------------------------------------------------------------


def test_psi_golden_three_bins() -> None:
    # reference 0.5 0.3 0.2, window 0.3 0.3 0.4; missing bin 0 on both sides contributes 0.
    # (0.3-0.5)*ln(0.3/0.5) = -0.2 * -0.510826 = 0.102165
    # (0.3-0.3)*ln(1)       = 0
    # (0.4-0.2)*ln(0.4/0.2) =  0.2 *  0.693147 = 0.138629
    # PSI = 0.240795
    assert psi((50, 30, 20), 0, (30, 30, 40), 0) == pytest.approx(0.240795, abs=1e-6)


def test_psi_of_identical_proportions_is_zero() -> None:
    assert psi((50, 30, 20), 5, (10, 6, 4), 1) == 0.0


def test_missing_values_are_a_bin_of_their_own() -> None:
    # reference 0.5 0.5 | missing 0 (floored to 1e-4); window 0.4 0.4 | missing 0.2
    # 2 * (0.4-0.5)*ln(0.4/0.5)         = 2 * 0.1 * 0.223144    = 0.044629
    # (0.2-0.0001)*ln(0.2/0.0001)       = 0.1999 * ln(2000)
    #                                   = 0.1999 * 7.600902     = 1.519420
    # PSI = 1.564049
    assert psi((50, 50), 0, (40, 40), 20) == pytest.approx(1.564049, abs=1e-6)
    # The same present values with a growing missing share: PSI grows with it.
    shifts = [psi((50, 50), 10, (45, 45), m) for m in (10, 20, 40, 80)]
    assert shifts[0] == pytest.approx(0.0, abs=1e-3)
    assert shifts == sorted(shifts)
    assert shifts[-1] > 0.2


def test_out_of_range_values_land_in_the_open_ended_outer_bins() -> None:
    values = np.array([-np.inf, -1e9, 0.5, 1.0, 1.5, 2.5, 1e9, np.inf, np.nan])
    window = NumericWindow.from_values(values, EDGES)
    assert window.counts == (4, 1, 3)  # -inf -1e9 0.5 1.0 | 1.5 | 2.5 1e9 inf
    assert window.missing == 1
    assert window.total == values.size  # nothing dropped (the seed's PSI dropped these)


def test_window_entirely_above_the_reference_range_is_large_but_finite() -> None:
    window = NumericWindow.from_values(np.full(300, 50.0), EDGES)
    assert window.counts == (0, 0, 300)
    # reference 1/3 1/3 1/3, window 0 (floored to 1e-4) 0 1; missing 0 on both sides.
    # 2 * (0.0001-0.333333)*ln(0.0001/0.333333) = 2 * -0.333233 * -8.111728 = 5.406196
    # (1-0.333333)*ln(3)                        = 0.666667 * 1.098612      = 0.732408
    # PSI = 6.138605
    assert psi((100, 100, 100), 0, window.counts, window.missing) == pytest.approx(
        6.138605, abs=1e-6
    )


def test_psi_epsilon_must_be_positive() -> None:
    with pytest.raises(ValueError, match="epsilon"):
        psi_on_bins([1, 0], [0, 1], epsilon=0.0)
    assert PSI_EPSILON == 1e-4


def test_psi_refuses_mismatched_or_empty_bins() -> None:
    with pytest.raises(ValueError, match="bins differ"):
        psi_on_bins([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least one count"):
        psi_on_bins([0, 0], [1, 2])


# --- Jensen-Shannon distance ----------------------------------------------------------------


def test_js_distance_golden_values() -> None:
    # Disjoint: p = (1, 0) over (a, unseen), q = (0, 1): m = (.5, .5),
    # KL(p||m) = KL(q||m) = log2(2) = 1, divergence 1, distance 1.
    assert js_distance({"a": 1}, 0, {"b": 1}, 0) == 1.0
    assert js_distance({"a": 3, "b": 1}, 2, {"a": 6, "b": 2}, 4) == 0.0
    # p = (1, 0), q = (.5, .5): m = (.75, .25)
    # KL(p||m) = log2(1/.75)                          = 0.415037
    # KL(q||m) = .5*log2(.5/.75) + .5*log2(.5/.25)     = -0.292481 + 0.5 = 0.207519
    # divergence = (0.415037 + 0.207519) / 2 = 0.311278; distance = sqrt = 0.557923
    assert js_distance({"a": 1}, 0, {"a": 1, "b": 1}, 0) == pytest.approx(0.557923, abs=1e-6)


def test_unseen_categories_move_the_distance() -> None:
    # (a, b, unseen): p = (.5, .5, 0), q = (.5, .4, .1): m = (.5, .45, .05)
    # KL(p||m) = .5*log2(.5/.45)                 = 0.5 * 0.152003  = 0.076002
    # KL(q||m) = .4*log2(.4/.45) + .1*log2(2)     = -0.067970 + 0.1 = 0.032030
    # divergence = 0.054016; distance = 0.232413
    distance = js_distance({"a": 50, "b": 50}, 0, {"a": 50, "b": 40, "c": 10}, 0)
    assert distance == pytest.approx(0.232413, abs=1e-6)
    assert distance == pytest.approx(jensenshannon([0.5, 0.5, 0, 0], [0.5, 0.4, 0.1, 0], base=2))
    # All unseen categories share one bucket: which ones they are does not matter.
    assert js_distance({"a": 50, "b": 50}, 0, {"a": 50, "b": 40, "x": 4, "y": 6}, 0) == distance


def test_missing_share_moves_the_categorical_distance() -> None:
    base = js_distance({"a": 50, "b": 50}, 10, {"a": 50, "b": 50}, 10)
    more_missing = js_distance({"a": 50, "b": 50}, 10, {"a": 50, "b": 50}, 60)
    assert base == 0.0
    assert 0.0 < more_missing < 1.0


# --- chi-square p-value and Benjamini-Hochberg ----------------------------------------------


def test_chi2_p_value_golden_values() -> None:
    # Two samples: reference (50, 50), window (30, 70). Row totals 100, 100; column totals 80,
    # 120; N 200; expected (40, 60) in both rows. chi2 = 2 * (10^2/40 + 10^2/60) = 8.3333, df 1:
    # p = 2 * (1 - Phi(sqrt 8.3333)) = 2 * (1 - Phi(2.88675)) = 0.0038924
    assert chi2_p_value([50, 50], [30, 70]) == pytest.approx(0.0038924, abs=1e-6)
    # Identical proportions: chi2 = 0, p = 1 whatever the sizes.
    assert chi2_p_value([25] * 4, [5, 5, 5, 5]) == pytest.approx(1.0)
    # The reference's own sampling noise counts: the same window against a 10x larger
    # reference is more significant, but never as much as against exact proportions.
    small, large = chi2_p_value([50, 50], [60, 40]), chi2_p_value([500, 500], [60, 40])
    assert 0.0455003 < large < small


def test_chi2_pools_bins_that_expect_too_few() -> None:
    # An unseen bucket (0 in the reference, 30 in the window) is a real difference: it is kept
    # when it expects enough, and the test sees it.
    assert chi2_p_value([50, 50, 0], [50, 20, 30]) < 1e-6
    # Tiny bins are pooled rather than divided by: (95, 3, 2) vs (85, 10, 5) expects
    # (90, 6.5, 3.5) per row; the 3.5 column is under 5, alone it stays under 5, so it joins the
    # bin expecting least (6.5): (95, 5) vs (85, 15), expected (90, 10), chi2 =
    # 2 * (25/90 + 25/10) = 5.5556, df 1: p = 2 * (1 - Phi(2.35702)) = 0.018422
    assert chi2_p_value([95, 3, 2], [85, 10, 5]) == pytest.approx(0.018422, abs=1e-5)
    # Nothing to compare: no evidence either way.
    assert chi2_p_value([100, 0, 0], [0, 0, 0]) == 1.0
    assert chi2_p_value([100], [50]) == 1.0


def test_benjamini_hochberg_on_the_textbook_example() -> None:
    # Benjamini & Hochberg (1995), section 4: 15 p-values at q = 0.05. The largest i with
    # p_(i) <= i/15 * 0.05 is i = 4 (0.0095 <= 0.01333; 0.0201 > 0.01667, and no later one
    # passes), so the four smallest are rejected; Bonferroni (0.05/15 = 0.00333) rejects three.
    p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240]
    p += [0.4262, 0.5719, 0.6528, 0.7590, 1.0000]
    rejected = benjamini_hochberg(p, 0.05)
    assert rejected == [True] * 4 + [False] * 11


def test_benjamini_hochberg_steps_up_and_keeps_input_order() -> None:
    # sorted 0.02 0.03 0.035 against 0.0167 0.0333 0.05: the smallest fails on its own, but the
    # largest passes, so all three are rejected (step-up).
    assert benjamini_hochberg([0.035, 0.02, 0.03], 0.05) == [True, True, True]
    assert benjamini_hochberg([0.9, 0.001, 0.5], 0.05) == [False, True, False]
    assert benjamini_hochberg([], 0.05) == []


def test_benjamini_hochberg_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="alpha"):
        benjamini_hochberg([0.1], 0.0)
    with pytest.raises(ValueError, match="p-values"):
        benjamini_hochberg([1.5], 0.05)


# --- persistence ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "k", "n", "expected"),
    [
        ([True, True, True], 3, 3, True),
        ([True, False, True, True], 2, 3, True),  # last 3: F T T
        ([True, True, False, False, True], 2, 3, False),  # last 3: F F T; older ones ignored
        ([True, None, True], 3, 3, False),  # insufficient data is not drift
        ([True, None, True], 2, 3, True),
        ([True, True], 3, 5, False),  # fewer than n windows: only what exists
        ([True, True, True], 3, 5, True),
        ([], 1, 1, False),
    ],
)
def test_persistent_drift(history: list[bool | None], k: int, n: int, expected: bool) -> None:
    assert persistent_drift(history, k, n) is expected


def test_persistent_drift_needs_k_within_n() -> None:
    with pytest.raises(ValueError, match="k <= n"):
        persistent_drift([True], 3, 2)


# --- registry and thresholds ----------------------------------------------------------------


def test_registered_tests() -> None:
    summary = {
        (t.name, t.kind, t.default_threshold, t.higher_is_drift) for t in STAT_TESTS.values()
    }
    assert summary == {
        ("psi", "numeric", 0.2, True),
        ("jensen_shannon", "categorical", 0.1, True),
        ("score_psi", "score", 0.2, True),
    }


def test_threshold_boundary_semantics() -> None:
    test = STAT_TESTS["psi"]
    assert test.is_drift(0.2, 0.2)  # at the threshold is drift
    assert not test.is_drift(math.nextafter(0.2, 0.0), 0.2)
    p_value_test = StatTest(
        name="p", kind="numeric", default_threshold=0.05, higher_is_drift=False, fn=psi_on_bins
    )
    assert p_value_test.is_drift(0.01, 0.05)
    assert not p_value_test.is_drift(0.05, 0.05)


# --- windows: merging, JSON, validation -----------------------------------------------------

floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1.0, 2.0, np.nan])
categories = st.sampled_from(["a", "b", "zebra", MISSING_CATEGORY])
scores = st.floats(min_value=0.0, max_value=1.0) | st.sampled_from(SCORE_EDGES)


@settings(deadline=None)
@given(values=st.lists(floats, max_size=60), cut=st.integers(min_value=0))
def test_numeric_merge_equals_binning_the_concatenation(values: list[float], cut: int) -> None:
    cut %= len(values) + 1
    whole = np.array(values, dtype=np.float64)
    left = NumericWindow.from_values(whole[:cut], EDGES)
    right = NumericWindow.from_values(whole[cut:], EDGES)
    assert left.merge(right) == NumericWindow.from_values(whole, EDGES)


@settings(deadline=None)
@given(
    rows=st.lists(st.tuples(floats, categories, scores), max_size=60),
    cut=st.integers(min_value=0),
)
def test_feature_windows_merge_equals_the_concatenation(
    rows: list[tuple[float, str, float]], cut: int
) -> None:
    cut %= len(rows) + 1
    reference = _reference()

    def windows(part: list[tuple[float, str, float]]) -> FeatureWindows:
        columns = {
            "age": np.array([r[0] for r in part], dtype=np.float64),
            "plan": np.array([r[1] for r in part], dtype=object),
        }
        return FeatureWindows.from_columns(
            reference, columns, np.array([r[2] for r in part], dtype=np.float64)
        )

    merged = windows(rows[:cut]).merge(windows(rows[cut:]))
    assert merged == windows(rows)
    assert FeatureWindows.empty(reference).merge(merged) == merged
    assert compare(reference, merged, min_samples=1) == compare(
        reference, windows(rows), min_samples=1
    )


def test_merging_windows_on_different_edges_is_refused() -> None:
    a = NumericWindow.from_values(np.array([1.0]), (1.0, 2.0))
    b = NumericWindow.from_values(np.array([1.0]), (1.0, 3.0))
    with pytest.raises(ValueError, match="cannot merge numeric windows binned differently"):
        a.merge(b)
    s = ScoreWindow.from_values(np.array([0.5]), SCORE_EDGES)
    with pytest.raises(ValueError, match="cannot merge score windows"):
        s.merge(ScoreWindow.from_values(np.array([0.5]), (0.5,)))


def test_merging_windows_of_different_features_is_refused() -> None:
    score = ScoreWindow.from_values(np.array([0.5]), SCORE_EDGES)
    numeric = NumericWindow.from_values(np.array([1.0]), EDGES)
    categorical = CategoricalWindow.from_values(np.array(["a"]))
    with pytest.raises(ValueError, match="different features"):
        FeatureWindows(features={"x": numeric}, score=score).merge(
            FeatureWindows(features={"y": numeric}, score=score)
        )
    with pytest.raises(ValueError, match="numeric here, categorical there"):
        FeatureWindows(features={"x": numeric}, score=score).merge(
            FeatureWindows(features={"x": categorical}, score=score)
        )


def test_categorical_window_counts_and_merges() -> None:
    a = CategoricalWindow.from_values(np.array(["b", "a", MISSING_CATEGORY, "a"], dtype=object))
    assert a.counts == {"a": 2, "b": 1}
    assert a.missing == 1
    merged = a.merge(CategoricalWindow.from_values(np.array(["c", MISSING_CATEGORY])))
    assert merged.counts == {"a": 2, "b": 1, "c": 1}
    assert (merged.missing, merged.total) == (2, 6)


def test_windows_round_trip_through_json() -> None:
    reference = _reference()
    columns = {
        "age": np.array([0.1, 1.0 / 3.0, 7.25, np.nan]),
        "plan": np.array(["a", "new", MISSING_CATEGORY, "b"], dtype=object),
    }
    windows = FeatureWindows.from_columns(reference, columns, np.array([0.05, 0.5, 0.95, 1.0]))
    restored = FeatureWindows.model_validate_json(windows.model_dump_json())
    assert restored == windows
    assert isinstance(restored.features["plan"], CategoricalWindow)
    assert restored.merge(windows).features["age"].total == 8  # edges survive exactly


def test_windows_refuse_inconsistent_shapes() -> None:
    with pytest.raises(ValueError, match="2 edges need 3 counts"):
        NumericWindow(edges=EDGES, counts=(1, 2), missing=0)
    with pytest.raises(ValueError, match="strictly increasing"):
        NumericWindow(edges=(2.0, 1.0), counts=(1, 2, 3), missing=0)
    with pytest.raises(ValueError, match="is counted in 'missing'"):
        CategoricalWindow(counts={MISSING_CATEGORY: 1}, missing=0)
    with pytest.raises(ValueError, match="NaN"):
        ScoreWindow.from_values(np.array([0.5, np.nan]), SCORE_EDGES)
    with pytest.raises(ValueError, match="columns missing"):
        FeatureWindows.from_columns(_reference(), {"age": np.array([1.0])}, np.array([0.5]))


def test_a_window_binned_unlike_its_reference_is_refused() -> None:
    reference = NumericReference(edges=EDGES, counts=(1, 1, 1), missing=0)
    with pytest.raises(ValueError, match="not binned on the reference edges"):
        aligned_bins(reference, NumericWindow.from_values(np.array([1.0]), (1.0, 5.0)))
    with pytest.raises(ValueError, match="cannot be compared"):
        aligned_bins(reference, CategoricalWindow.from_values(np.array(["a"])))


# --- compare and the dataset-level rules ----------------------------------------------------


def _reference() -> ReferenceProfile:
    return ReferenceProfile(
        rows=300,
        features={
            "age": NumericReference(edges=EDGES, counts=(100, 100, 100), missing=0),
            "plan": CategoricalReference(counts={"a": 150, "b": 150}, missing=0),
        },
        score=ScoreReference(edges=SCORE_EDGES, counts=(30,) * 10),
    )


def _windows(rows: int, *, age: float | None = None, plan: str | None = None) -> FeatureWindows:
    """``rows`` rows like the reference, unless ``age`` or ``plan`` pins a column to one value."""
    ages = np.resize([0.5, 1.5, 2.5], rows) if age is None else np.full(rows, age)
    plans = np.resize(["a", "b"], rows) if plan is None else np.full(rows, plan)
    scores = np.resize(np.arange(10) / 10 + 0.05, rows)
    return FeatureWindows.from_columns(_reference(), {"age": ages, "plan": plans}, scores)


def test_compare_without_drift() -> None:
    results = compare(_reference(), _windows(300))
    assert [(r.feature, r.test, r.verdict) for r in results] == [
        ("age", "psi", "no_drift"),
        ("plan", "jensen_shannon", "no_drift"),
        (SCORE_FEATURE, "score_psi", "no_drift"),
    ]
    assert all(r.score == 0.0 and r.p_value == pytest.approx(1.0) for r in results)
    assert [(r.reference_count, r.window_count) for r in results] == [(300, 300)] * 3


def test_compare_with_drift_says_every_number() -> None:
    age, plan, score = compare(_reference(), _windows(300, age=50.0, plan="new"))
    assert age.verdict == "drift"
    assert age.score == pytest.approx(6.138605, abs=1e-6)  # the out-of-range golden value
    assert age.threshold == 0.2
    assert age.message == "psi 6.1386 >= threshold 0.2"
    assert age.p_value is not None and age.p_value < 1e-12
    assert plan.verdict == "drift"
    assert plan.score == 1.0  # all mass moved to the unseen bucket
    assert score.verdict == "no_drift"
    assert DriftResult.model_validate_json(age.model_dump_json()) == age


def test_too_few_samples_is_insufficient_data_not_a_number() -> None:
    results = compare(_reference(), _windows(99, age=50.0))
    assert {r.verdict for r in results} == {"insufficient_data"}
    assert all(r.score is None and r.p_value is None for r in results)
    assert results[0].message == "window has 99 samples, fewer than the minimum 100"
    assert compare(_reference(), _windows(100, age=50.0))[0].verdict == "drift"
    results = compare(_reference(), _windows(400), min_samples=301)
    assert results[0].message == "reference has 300 samples, fewer than the minimum 301"
    with pytest.raises(ValueError, match="a score is given exactly"):
        DriftResult(
            feature="x",
            test="psi",
            score=None,
            threshold=0.2,
            verdict="drift",
            reference_count=1,
            window_count=1,
            message="",
        )


def test_threshold_overrides_by_test_name() -> None:
    windows = _windows(300, plan="a")  # plan: (.5, .5) vs (1, 0): distance 0.557923
    plan = compare(_reference(), windows)[1]
    assert plan.score == pytest.approx(0.557923, abs=1e-6)
    assert plan.score is not None
    at_score = compare(_reference(), windows, thresholds={"jensen_shannon": plan.score})[1]
    assert at_score.verdict == "drift"
    above = math.nextafter(plan.score, 1.0)
    assert compare(_reference(), windows, thresholds={"jensen_shannon": above})[1].verdict == (
        "no_drift"
    )
    with pytest.raises(ValueError, match="unknown tests"):
        compare(_reference(), windows, thresholds={"jensen-shannon": 0.2})


def test_compare_refuses_windows_of_other_features() -> None:
    windows = _windows(300)
    other = windows.model_copy(update={"features": {"age": windows.features["age"]}})
    with pytest.raises(ValueError, match="not the reference's"):
        compare(_reference(), other)


def test_dataset_drift_needs_a_share_of_features() -> None:
    def result(feature: str, verdict: str, p_value: float | None = None) -> DriftResult:
        score = None if verdict == "insufficient_data" else 0.5
        return DriftResult.model_validate(
            {
                "feature": feature,
                "test": "psi",
                "score": score,
                "threshold": 0.2,
                "verdict": verdict,
                "reference_count": 100,
                "window_count": 100,
                "message": "",
                "p_value": p_value,
            }
        )

    results = [
        result("a", "drift", 0.001),
        result("b", "no_drift", 0.04),
        result("c", "no_drift", 0.6),
        result("d", "insufficient_data"),
        result(SCORE_FEATURE, "drift", 0.0),
    ]
    verdict = dataset_drift(results)  # 1 of 3 tested features; d and the score do not count
    assert (verdict.verdict, verdict.tested, verdict.drifted_features) == ("no_drift", 3, ("a",))
    assert dataset_drift(results, share=1 / 3).verdict == "drift"
    assert dataset_drift([results[3]]).verdict == "insufficient_data"
    # BH over a, b, c: sorted 0.001 0.04 0.6 against 0.0167 0.0333 0.05: only a is rejected.
    assert fdr_drifted(results) == ("a",)
    assert fdr_drifted(results, alpha=0.13) == ("a", "b")  # 0.04 <= 2/3 * 0.13 = 0.0867
