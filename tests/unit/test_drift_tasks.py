"""Drift of the model's output per task: a regression's predictions by PSI on the reference
prediction histogram, a multiclass model's predicted class by Jensen-Shannon distance over the
reference's predicted classes, golden values of both on tiny windows, and references written
before tasks (binary, with a score histogram) still judged as before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from lambdaserve.drift.histograms import FeatureWindows
from lambdaserve.drift.html import render_html
from lambdaserve.drift.job import Baseline, DriftJobError, run_drift
from lambdaserve.drift.report import DriftReport, alarm_message
from lambdaserve.drift.report_store import DriftReportStore
from lambdaserve.drift.statistics import SCORE_FEATURE, compare
from lambdaserve.drift.windows import WindowAccumulator
from lambdaserve.kernel.capture import CaptureRecord
from lambdaserve.kernel.manifest import ClassLabel, Task
from lambdaserve.kernel.reference import (
    SCORE_EDGES,
    NumericReference,
    ReferenceProfile,
    ScoreReference,
    numeric_reference,
    prediction_reference,
)
from lambdaserve.kernel.schema import FeatureSchema, FeatureSpec
from lambdaserve.views.console import out
from lambdaserve.views.drift import print_report
from tests.support.fakes import MemoryFiles

pytestmark = pytest.mark.unit

HOUR = timedelta(hours=1)
SCHEDULED = datetime(2026, 11, 27, 12, 5, tzinfo=UTC)  # judges 10:00-11:00
WINDOW_START = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
SCHEMA = FeatureSchema(
    features=(FeatureSpec(name="amount", kind="numeric", dtype="float", nullable=True),)
)
CLASSES: tuple[ClassLabel, ...] = ("bronze", "silver", "gold")
CLASS_SHARES = (0.5, 0.3, 0.2)


def _record(i: int, amount: float, **output: Any) -> CaptureRecord:
    return CaptureRecord(
        captured_at=WINDOW_START + i * timedelta(seconds=1),
        prediction_id=f"p-{i}",
        model_name="m",
        model_version="1",
        bundle_sha256="0" * 64,
        features={"amount": amount},
        latency_ms=1.0,
        **output,
    )


def _amounts(n: int, seed: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.random.default_rng(seed).normal(0.0, 1.0, n)


def _judge(
    rows: list[CaptureRecord], reference: ReferenceProfile, task: Task | None
) -> DriftReport:
    def captures(start: datetime, end: datetime) -> Iterator[CaptureRecord]:
        return iter(rows)

    (report,) = run_drift(
        SCHEDULED,
        captures=captures,
        references=lambda name, version: Baseline(reference, SCHEMA, (), task),
        reports=DriftReportStore(MemoryFiles()),
    )
    return report


# --- regression: the prediction by PSI ------------------------------------------------------


def regression_reference(rows: int = 4000) -> ReferenceProfile:
    rng = np.random.default_rng(0)
    return ReferenceProfile(
        rows=rows,
        features={"amount": numeric_reference(rng.normal(0.0, 1.0, rows))},
        score=prediction_reference(rng.normal(50.0, 10.0, rows)),
    )


def regression_records(n: int, *, center: float, seed: int) -> list[CaptureRecord]:
    predictions = np.random.default_rng(seed).normal(center, 10.0, n)
    amounts = _amounts(n, seed + 100)
    return [_record(i, float(amounts[i]), prediction=float(predictions[i])) for i in range(n)]


def test_regression_predictions_drift_when_shifted_and_not_otherwise() -> None:
    reference = regression_reference()
    steady = _judge(regression_records(1000, center=50.0, seed=1), reference, "regression")
    shifted = _judge(regression_records(1000, center=60.0, seed=2), reference, "regression")
    assert steady.task == shifted.task == "regression"
    assert (steady.score.feature, steady.score.test) == (SCORE_FEATURE, "score_psi")
    assert steady.score.verdict == "no_drift"
    assert steady.score.score is not None and steady.score.score < 0.05
    assert shifted.score.verdict == "drift"
    assert shifted.score.score is not None and shifted.score.score > 0.2
    # The features were not shifted: only the output drifted, and it is no feature.
    assert [r.verdict for r in shifted.features] == ["no_drift"]
    assert shifted.dataset.verdict == "no_drift" and shifted.dataset.tested == 1
    # Binned on the reference's own prediction deciles, not the probability edges.
    assert reference.score is not None and reference.score.edges != SCORE_EDGES
    bins = shifted.bins[SCORE_FEATURE]
    assert len(bins.labels) == len(reference.score.edges) + 1 and sum(bins.window) == 1000


def test_regression_rows_without_a_finite_prediction_are_left_out_and_noted() -> None:
    rows = regression_records(300, center=50.0, seed=3)
    rows[0] = rows[0].model_copy(update={"prediction": float("inf")})
    rows[1] = rows[1].model_copy(update={"prediction": None})
    report = _judge(rows, regression_reference(), "regression")
    assert report.rows == 298
    assert report.score.window_count == report.features[0].window_count == 298
    assert "2 rows without a finite prediction were left out" in report.notes


def test_regression_output_is_shown_as_the_prediction() -> None:
    report = _judge(
        regression_records(300, center=60.0, seed=4), regression_reference(), "regression"
    )
    page = render_html(report)
    assert "<td>prediction</td>" in page and "prediction score" not in page
    assert page.count("<svg") == 2  # the feature and the prediction
    assert "\nprediction: score_psi " in alarm_message(report)[1]
    with out.capture() as captured:
        print_report(report)
    assert "prediction" in captured.get() and "__score__" not in captured.get()


# --- multiclass: the predicted class by Jensen-Shannon distance -----------------------------


def multiclass_reference(rows: int = 4000) -> ReferenceProfile:
    counts = [int(rows * share) for share in CLASS_SHARES]
    return ReferenceProfile(
        rows=rows,
        features={"amount": numeric_reference(_amounts(rows, 0))},
        predicted_classes={str(c): n for c, n in zip(CLASSES, counts, strict=True)},
    )


def multiclass_records(
    n: int, *, shares: tuple[float, ...] = CLASS_SHARES, seed: int
) -> list[CaptureRecord]:
    labels = np.random.default_rng(seed).choice(len(CLASSES), n, p=list(shares))
    amounts = _amounts(n, seed + 100)
    return [
        _record(
            i,
            float(amounts[i]),
            label=CLASSES[int(labels[i])],
            probabilities={str(c): 1.0 if k == labels[i] else 0.0 for k, c in enumerate(CLASSES)},
        )
        for i in range(n)
    ]


def test_multiclass_predicted_class_shift_is_flagged_by_jensen_shannon() -> None:
    reference = multiclass_reference()
    steady = _judge(multiclass_records(1000, seed=1), reference, "multiclass_classification")
    shifted = _judge(
        multiclass_records(1000, shares=(0.15, 0.25, 0.6), seed=2),
        reference,
        "multiclass_classification",
    )
    assert steady.task == "multiclass_classification"
    assert (steady.score.test, steady.score.verdict) == ("jensen_shannon", "no_drift")
    assert (shifted.score.test, shifted.score.verdict) == ("jensen_shannon", "drift")
    assert shifted.score.score is not None and shifted.score.score > 0.1
    # Features are accumulated for multiclass records (they carry no probability).
    assert shifted.rows == 1000 and shifted.features[0].window_count == 1000
    assert shifted.dataset.verdict == "no_drift"  # the output is not counted as a feature
    bins = shifted.bins[SCORE_FEATURE]
    assert bins.labels == ("bronze", "gold", "silver", "(unseen)")
    assert bins.reference == (2000, 800, 1200, 0) and sum(bins.window) == 1000


def test_multiclass_without_the_task_is_implied_by_the_reference() -> None:
    reference = multiclass_reference()
    report = _judge(multiclass_records(500, seed=5), reference, None)
    assert report.task == "multiclass_classification" and report.score.test == "jensen_shannon"


def test_multiclass_rows_without_a_label_are_left_out_and_unseen_classes_counted() -> None:
    rows = multiclass_records(300, seed=6)
    rows[0] = rows[0].model_copy(update={"label": None})
    rows[1] = rows[1].model_copy(update={"label": "platinum"})  # never predicted in training
    report = _judge(rows, multiclass_reference(), "multiclass_classification")
    assert report.rows == 299
    assert "1 rows without a predicted class were left out" in report.notes
    assert report.bins[SCORE_FEATURE].window[-1] == 1
    page = render_html(report)
    assert "<td>predicted class</td>" in page and "(unseen)" in page
    assert "\npredicted class: jensen_shannon " in alarm_message(report)[1]


def test_multiclass_classes_are_keyed_as_json_spells_them() -> None:
    reference = ReferenceProfile(
        rows=300,
        features={"amount": numeric_reference(_amounts(300, 0))},
        predicted_classes={"1": 100, "2": 100, "true": 100},
    )
    labels: list[ClassLabel] = [1, 2, True]
    rows = [_record(i, 0.0, label=labels[i % 3]) for i in range(300)]
    report = _judge(rows, reference, "multiclass_classification")
    assert report.score.score == 0.0
    assert report.bins[SCORE_FEATURE].window == (100, 100, 100, 0)


def test_multiclass_streaming_merge_equals_one_shot_counting() -> None:
    reference = multiclass_reference()
    rows = multiclass_records(1003, seed=7)
    accumulator = WindowAccumulator(reference, chunk_rows=97, task="multiclass_classification")
    for row in rows:
        accumulator.add(row)
    one_shot = FeatureWindows.from_columns(
        reference,
        {"amount": np.array([r.features["amount"] for r in rows], dtype=np.float64)},
        classes=[str(r.label) for r in rows],
    )
    assert accumulator.result() == one_shot and accumulator.rows == 1003
    assert one_shot.score is None and one_shot.predicted_classes is not None
    assert FeatureWindows.empty(reference).merge(one_shot) == one_shot


def test_a_reference_without_the_tasks_output_fails_that_version_only() -> None:
    binary_style = regression_reference()  # a score histogram, no predicted classes
    with pytest.raises(DriftJobError, match="profiles no output of a multiclass_classification"):
        _judge(multiclass_records(200, seed=8), binary_style, "multiclass_classification")
    with pytest.raises(ValueError, match="profiles no output"):
        WindowAccumulator(multiclass_reference(), task="regression")


# --- golden values on tiny windows ----------------------------------------------------------


def test_regression_psi_golden_value() -> None:
    # Edges 10 | 20 (value <= edge goes left): reference 5 3 2 -> 0.5 0.3 0.2; window
    # 10.0 -> bin 0; 12.0, 20.0 -> bin 1; seven above 20 -> bin 2: 0.1 0.2 0.7.
    # (0.1-0.5)*ln(0.1/0.5) = -0.4 * -1.609438 = 0.643775
    # (0.2-0.3)*ln(0.2/0.3) = -0.1 * -0.405465 = 0.040547
    # (0.7-0.2)*ln(0.7/0.2) =  0.5 *  1.252763 = 0.626381
    # PSI = 1.310703
    reference = ReferenceProfile(
        rows=10,
        features={},
        score=ScoreReference(edges=(10.0, 20.0), counts=(5, 3, 2)),
    )
    predictions = np.array([10.0, 12.0, 20.0, 21.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0])
    windows = FeatureWindows.from_columns(reference, {}, predictions)
    (output,) = compare(reference, windows, min_samples=1)
    assert output.test == "score_psi" and output.verdict == "drift"
    assert output.score == pytest.approx(1.310703, abs=1e-6)
    assert (output.reference_count, output.window_count) == (10, 10)


def test_multiclass_js_distance_golden_value() -> None:
    # Reference a 2, b 2; window a a a d: bins a b (unseen) -> p = .5 .5 0, q = .75 0 .25,
    # m = .625 .25 .125. KL(p||m) = .5 log2(.8) + .5 log2(2) = 0.339036;
    # KL(q||m) = .75 log2(1.2) + .25 log2(2) = 0.447276; JSD = 0.393156; distance = 0.627022.
    reference = ReferenceProfile(rows=4, features={}, predicted_classes={"a": 2, "b": 2})
    windows = FeatureWindows.from_columns(reference, {}, classes=["a", "a", "a", "d"])
    (output,) = compare(reference, windows, min_samples=1)
    assert output.test == "jensen_shannon" and output.verdict == "drift"
    assert output.score == pytest.approx(0.627022, abs=1e-6)
    assert output.score == pytest.approx(jensenshannon([2, 2, 0], [3, 0, 1], base=2))
    assert (output.reference_count, output.window_count) == (4, 4)


def test_multiclass_threshold_is_the_categorical_tests() -> None:
    reference = ReferenceProfile(rows=4, features={}, predicted_classes={"a": 2, "b": 2})
    windows = FeatureWindows.from_columns(reference, {}, classes=["a", "a", "a", "d"])
    (output,) = compare(reference, windows, min_samples=1, thresholds={"jensen_shannon": 0.7})
    assert (output.threshold, output.verdict) == (0.7, "no_drift")


def test_outputs_of_different_kinds_are_not_compared_or_merged() -> None:
    scored = ReferenceProfile(
        rows=4, features={}, score=ScoreReference(edges=(0.5,), counts=(2, 2))
    )
    classed = ReferenceProfile(rows=4, features={}, predicted_classes={"a": 4})
    windows = FeatureWindows.from_columns(classed, {}, classes=["a"])
    with pytest.raises(ValueError, match="predicted classes cannot be compared"):
        compare(scored, windows, min_samples=1)
    with pytest.raises(ValueError, match="cannot merge"):
        FeatureWindows.empty(scored).merge(windows)
    with pytest.raises(ValueError, match="no score histogram"):
        FeatureWindows.from_columns(classed, {}, np.array([0.5]))


# --- references and reports written before tasks --------------------------------------------


OLD_REFERENCE = {
    "rows": 300,
    "features": {
        "amount": {"kind": "numeric", "edges": [-0.5, 0.5], "counts": [100, 100, 100], "missing": 0}
    },
    "score": {"edges": list(SCORE_EDGES), "counts": [30] * 10},
}


def test_an_old_binary_reference_json_loads_and_is_judged_as_before() -> None:
    reference = ReferenceProfile.model_validate_json(json.dumps(OLD_REFERENCE))
    assert reference.predicted_classes is None and reference.score is not None
    assert isinstance(reference.features["amount"], NumericReference)
    rows = [
        _record(i, float(i % 3) - 1.0, probability=(i % 10) / 10 + 0.05, label=0)
        for i in range(300)
    ]
    report = _judge(rows, reference, None)
    assert report.task == "binary_classification"
    assert (report.score.test, report.score.verdict, report.score.score) == (
        "score_psi",
        "no_drift",
        0.0,
    )
    assert "\nprediction score: score_psi " in alarm_message(report)[1]
    assert "<td>prediction score</td>" in render_html(report)
    # A report stored before tasks (no "task") loads as a binary model's.
    stored = json.loads(report.model_dump_json())
    del stored["task"]
    assert DriftReport.model_validate(stored) == report
