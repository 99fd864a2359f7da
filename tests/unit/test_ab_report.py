"""The A/B report's statistics, with values worked by hand, and its join of captures and
feedback."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from lambdaserve.abtest.report import FEEDBACK_PER_PREDICTION, ab_report
from lambdaserve.abtest.statistics import wilson
from lambdaserve.kernel.capture import CaptureRecord, FeedbackRecord
from lambdaserve.kernel.errors import InvalidInputError
from lambdaserve.kernel.prediction_ids import new_prediction_ids

T0 = datetime(2026, 11, 27, 10, tzinfo=UTC)


def capture(prediction_id: str, version: str, probability: float) -> CaptureRecord:
    return CaptureRecord(
        captured_at=T0,
        prediction_id=prediction_id,
        model_name="churn",
        model_version=version,
        bundle_sha256="a" * 64,
        features={},
        probability=probability,
        label=int(probability >= 0.5),
        latency_ms=1.0,
    )


def outcome(prediction_id: str, label: int, *, model: str = "churn") -> FeedbackRecord:
    return FeedbackRecord(
        received_at=T0 + timedelta(hours=1),
        prediction_id=prediction_id,
        model_name=model,
        label=label,
    )


def arm(
    version: str, scores: list[float], labels: list[int]
) -> tuple[list[CaptureRecord], list[FeedbackRecord]]:
    ids = new_prediction_ids(len(scores))
    captures = [capture(i, version, p) for i, p in zip(ids, scores, strict=True)]
    return captures, [outcome(i, y) for i, y in zip(ids, labels, strict=True)]


def test_wilson_interval_matches_the_worked_value() -> None:
    # p = 0.8, n = 10, z = 1.96: centre 0.71674, half-width 0.22657.
    interval = wilson(8, 10)
    assert interval.low == pytest.approx(0.4902, abs=5e-4)
    assert interval.high == pytest.approx(0.9433, abs=5e-4)


def test_one_arm_metrics_by_hand() -> None:
    captures, feedback = arm("1", [0.9, 0.2, 0.4, 0.6], [1, 0, 1, 0])
    report = ab_report(
        "churn", captures, feedback, task="binary_classification", positive_class=1, min_labelled=2
    )
    (quality,) = report.arms
    assert (quality.served, quality.labelled) == (4, 4)
    assert quality.accuracy == 0.5  # 0.9→1 ✓, 0.2→0 ✓, 0.4→0 ✗, 0.6→1 ✗
    assert quality.roc_auc == 0.75  # positive/negative pairs ordered right: 3 of 4
    losses = [-math.log(0.9), -math.log(0.8), -math.log(0.4), -math.log(0.4)]
    assert quality.log_loss == pytest.approx(sum(losses) / 4)
    assert quality.brier == pytest.approx((0.01 + 0.04 + 0.36 + 0.36) / 4)
    assert quality.observed_positive_rate == 0.5 and quality.mean_score == pytest.approx(0.525)
    assert report.comparisons == () and report.sample_ratio is None


def test_join_counts_unmatched_duplicates_and_the_latest_word() -> None:
    captures, feedback = arm("1", [0.9, 0.1], [1, 0])
    stray = outcome(new_prediction_ids(1)[0], 1)
    corrected = outcome(captures[1].prediction_id, 1)  # the second outcome was revised
    other_model = outcome(captures[0].prediction_id, 0, model="fraud")
    report = ab_report(
        "churn",
        captures,
        [*feedback, stray, corrected, other_model],
        task="binary_classification",
        positive_class=1,
    )
    assert (report.feedback_received, report.feedback_unmatched) == (4, 1)
    assert report.feedback_duplicates == 1
    (quality,) = report.arms
    assert quality.labelled == 2 and quality.accuracy == 0.5  # 0.1 was in fact positive


def test_the_latest_received_feedback_counts_whatever_order_it_is_read_in() -> None:
    """Locally the stream's files sort by process id: a correction sent after a restart can
    be read before the wrong label it corrects. The later received_at wins, not the later line."""
    captures, _ = arm("1", [0.9], [1])
    (prediction_id,) = [c.prediction_id for c in captures]
    wrong = FeedbackRecord(
        received_at=T0 + timedelta(hours=1),
        prediction_id=prediction_id,
        model_name="churn",
        label=0,
    )
    corrected = wrong.model_copy(update={"received_at": T0 + timedelta(hours=2), "label": 1})

    for order in ([wrong, corrected], [corrected, wrong]):
        (quality,) = ab_report(
            "churn", captures, order, task="binary_classification", positive_class=1
        ).arms
        assert quality.accuracy == 1.0, order


def test_a_flood_of_feedback_for_one_prediction_is_read_up_to_the_cap() -> None:
    captures, feedback = arm("1", [0.9], [1])
    flood = [feedback[0].model_copy(update={"label": 0})] * 8000

    report = ab_report(
        "churn", captures, [*feedback, *flood], task="binary_classification", positive_class=1
    )

    assert report.feedback_received == 8001
    assert report.feedback_duplicates == FEEDBACK_PER_PREDICTION - 1
    assert report.notes[0] == (
        f"{8001 - FEEDBACK_PER_PREDICTION} feedback lines beyond {FEEDBACK_PER_PREDICTION} for "
        "one prediction were not read"
    )


def test_a_better_challenger_is_found_and_an_equal_one_is_not() -> None:
    rng = np.random.default_rng(7)
    truth = rng.uniform(0.05, 0.95, 6000)
    labels = (rng.uniform(size=6000) < truth).astype(int).tolist()
    sharp = np.clip(truth, 0.01, 0.99).tolist()  # the true probabilities: calibrated
    blurred = np.clip(0.5 + 0.3 * (truth - 0.5), 0.01, 0.99).tolist()  # shrunk toward 0.5
    champion = arm("1", blurred[:3000], labels[:3000])
    better = arm("2", sharp[3000:], labels[3000:])
    report = ab_report(
        "churn",
        [*champion[0], *better[0]],
        [*champion[1], *better[1]],
        task="binary_classification",
        positive_class=1,
        baseline="1",
    )
    (comparison,) = report.comparisons
    assert comparison.verdict == "better than the baseline"
    assert comparison.difference < 0 and comparison.p_value < 1e-6
    assert comparison.difference_ci.high < 0

    same = arm("2", blurred[3000:], labels[3000:])
    report = ab_report(
        "churn",
        [*champion[0], *same[0]],
        [*champion[1], *same[1]],
        task="binary_classification",
        positive_class=1,
    )
    (comparison,) = report.comparisons
    assert comparison.verdict == "no significant difference in log loss"
    assert comparison.difference_ci.low < 0 < comparison.difference_ci.high


def test_too_little_feedback_is_not_compared() -> None:
    champion = arm("1", [0.7] * 50, [1] * 50)
    challenger = arm("2", [0.6] * 50, [1] * 50)
    report = ab_report(
        "churn",
        [*champion[0], *challenger[0]],
        [*champion[1], *challenger[1][:10]],
        task="binary_classification",
        positive_class=1,
    )
    assert report.comparisons == ()
    assert any("fewer than 100 labelled" in note for note in report.notes)


def test_sample_ratio_mismatch_by_hand() -> None:
    # 5300 vs 4700 against 50/50: chi2 = 2 * 300² / 5000 = 36, p = 1.97e-9.
    captures = [capture(i, "1", 0.5) for i in new_prediction_ids(5300)]
    captures += [capture(i, "2", 0.5) for i in new_prediction_ids(4700)]
    report = ab_report(
        "churn",
        captures,
        [],
        task="binary_classification",
        positive_class=1,
        expected_share={"1": 1, "2": 1},
    )
    assert report.sample_ratio is not None and report.sample_ratio.mismatch
    assert report.sample_ratio.p_value == pytest.approx(1.97e-9, rel=0.01)
    assert report.sample_ratio.observed_share == {"1": 0.53, "2": 0.47}
    assert any("sample ratio mismatch" in note for note in report.notes)
    # 5040 vs 4960: chi2 = 0.64, p = 0.42: no mismatch.
    balanced = captures[:5040] + [capture(i, "2", 0.5) for i in new_prediction_ids(4960)]
    report = ab_report(
        "churn",
        balanced,
        [],
        task="binary_classification",
        positive_class=1,
        expected_share={"1": 1, "2": 1},
    )
    assert report.sample_ratio is not None and not report.sample_ratio.mismatch
    assert report.sample_ratio.p_value == pytest.approx(0.4237, abs=1e-3)


def test_no_captures_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="no captured predictions of churn"):
        ab_report("churn", [], [], task="binary_classification", positive_class=1)


def test_a_non_finite_score_is_left_out_not_a_verdict() -> None:
    rng = np.random.default_rng(7)
    truth = rng.uniform(0.05, 0.95, 6000)
    labels = (rng.uniform(size=6000) < truth).astype(int).tolist()
    sharp = np.clip(truth, 0.01, 0.99).tolist()
    blurred = np.clip(0.5 + 0.3 * (truth - 0.5), 0.01, 0.99).tolist()
    champion = arm("1", blurred[:3000], labels[:3000])
    better = arm("2", [math.nan, *sharp[3001:]], labels[3000:])  # one captured NaN
    report = ab_report(
        "churn",
        [*champion[0], *better[0]],
        [*champion[1], *better[1]],
        task="binary_classification",
        positive_class=1,
        baseline="1",
    )
    (comparison,) = report.comparisons
    assert comparison.verdict == "better than the baseline"
    assert math.isfinite(comparison.difference)
    challenger = next(a for a in report.arms if a.version == "2")
    assert challenger.served == 3000 and challenger.labelled == 2999
    assert any("1 labelled predictions without a finite score" in n for n in report.notes)
