"""The A/B report of multiclass and regression models: golden values from scikit-learn and
SciPy on small hand-built arms, verdicts on larger simulated ones, and what is left out."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, log_loss, mean_absolute_error, mean_squared_error

from lambdaserve.abtest.report import ab_report
from lambdaserve.kernel.capture import CaptureRecord, FeedbackRecord
from lambdaserve.kernel.prediction_ids import new_prediction_ids

T0 = datetime(2026, 11, 27, 10, tzinfo=UTC)
CLASSES = ("cat", "dog", "fish")
Captured = tuple[list[CaptureRecord], list[FeedbackRecord]]


def _capture(prediction_id: str, version: str, **outputs: object) -> CaptureRecord:
    return CaptureRecord.model_validate(
        {
            "captured_at": T0,
            "prediction_id": prediction_id,
            "model_name": "pets",
            "model_version": version,
            "bundle_sha256": "a" * 64,
            "features": {},
            "latency_ms": 1.0,
            **outputs,
        }
    )


def _feedback(prediction_id: str, **outcome: object) -> FeedbackRecord:
    return FeedbackRecord.model_validate(
        {
            "received_at": T0 + timedelta(hours=1),
            "prediction_id": prediction_id,
            "model_name": "pets",
            **outcome,
        }
    )


def multiclass_arm(version: str, rows: list[list[float]], observed: list[str]) -> Captured:
    ids = new_prediction_ids(len(rows))
    captures = [
        _capture(
            i,
            version,
            label=CLASSES[int(np.argmax(row))],
            probabilities=dict(zip(CLASSES, row, strict=True)),
        )
        for i, row in zip(ids, rows, strict=True)
    ]
    return captures, [_feedback(i, label=y) for i, y in zip(ids, observed, strict=True)]


def regression_arm(version: str, predictions: list[float], values: list[float]) -> Captured:
    ids = new_prediction_ids(len(predictions))
    captures = [_capture(i, version, prediction=p) for i, p in zip(ids, predictions, strict=True)]
    return captures, [_feedback(i, value=v) for i, v in zip(ids, values, strict=True)]


def _normal_ci(values: np.ndarray) -> tuple[float, float]:
    low, high = stats.norm.interval(0.95, loc=values.mean(), scale=stats.sem(values))
    return float(low), float(high)


CHAMPION_ROWS = [
    [0.7, 0.2, 0.1],
    [0.3, 0.4, 0.3],
    [0.2, 0.2, 0.6],
    [0.5, 0.3, 0.2],
    [0.1, 0.8, 0.1],
    [0.4, 0.4, 0.2],
]
CHAMPION_OBSERVED = ["cat", "dog", "cat", "fish", "dog", "dog"]
CHALLENGER_ROWS = [
    [0.9, 0.05, 0.05],
    [0.1, 0.8, 0.1],
    [0.6, 0.1, 0.3],
    [0.2, 0.2, 0.6],
    [0.05, 0.9, 0.05],
]
CHALLENGER_OBSERVED = ["cat", "dog", "cat", "fish", "fish"]


def test_multiclass_arms_match_scikit_learn_and_scipy() -> None:
    champion = multiclass_arm("1", CHAMPION_ROWS, CHAMPION_OBSERVED)
    challenger = multiclass_arm("2", CHALLENGER_ROWS, CHALLENGER_OBSERVED)
    report = ab_report(
        "pets",
        [*champion[0], *challenger[0]],
        [*champion[1], *challenger[1]],
        task="multiclass_classification",
        classes=CLASSES,
        baseline="1",
        min_labelled=2,
    )
    assert report.task == "multiclass_classification" and report.notes == ()
    losses = {}
    for quality, rows, observed in (
        (report.arms[0], CHAMPION_ROWS, CHAMPION_OBSERVED),
        (report.arms[1], CHALLENGER_ROWS, CHALLENGER_OBSERVED),
    ):
        predicted = [CLASSES[int(np.argmax(row))] for row in rows]
        assert (quality.served, quality.labelled) == (len(rows), len(rows))
        assert quality.accuracy == pytest.approx(accuracy_score(observed, predicted))
        hits = sum(p == y for p, y in zip(predicted, observed, strict=True))
        wilson = stats.binomtest(hits, len(rows)).proportion_ci(method="wilson")
        assert quality.accuracy_ci is not None
        assert quality.accuracy_ci.low == pytest.approx(wilson.low, abs=1e-9)
        assert quality.accuracy_ci.high == pytest.approx(wilson.high, abs=1e-9)
        assert quality.log_loss == pytest.approx(log_loss(observed, rows, labels=list(CLASSES)))
        per_prediction = -np.log(
            [row[CLASSES.index(y)] for row, y in zip(rows, observed, strict=True)]
        )
        assert quality.log_loss_ci is not None
        assert (quality.log_loss_ci.low, quality.log_loss_ci.high) == pytest.approx(
            _normal_ci(per_prediction)
        )
        assert quality.brier is None and quality.roc_auc is None and quality.mse is None
        losses[quality.version] = (per_prediction, hits)

    (comparison,) = report.comparisons
    assert (comparison.metric, comparison.secondary_metric) == ("log_loss", "accuracy")
    assert comparison.difference == pytest.approx(losses["2"][0].mean() - losses["1"][0].mean())
    welch = stats.ttest_ind(losses["2"][0], losses["1"][0], equal_var=False)
    assert comparison.p_value == pytest.approx(welch.pvalue)
    assert comparison.secondary_difference == pytest.approx(4 / 5 - 3 / 6)
    # A two-proportion z-test is the uncorrected chi-square test of the 2x2 table.
    table = [[losses["2"][1], 5 - losses["2"][1]], [losses["1"][1], 6 - losses["1"][1]]]
    chi2 = stats.chi2_contingency(table, correction=False)
    assert comparison.secondary_p_value == pytest.approx(chi2.pvalue)
    assert comparison.verdict == "no significant difference in log loss"  # 11 outcomes


def _simulated_multiclass(
    rng: np.random.Generator, n: int, sharpness: float
) -> tuple[list[list[float]], list[str]]:
    """Rows whose true class probabilities are ``truth``; a model of ``sharpness`` 1 serves
    them, one below it shrinks them toward uniform."""
    truth = rng.dirichlet([1.0, 1.0, 1.0], n)
    observed = [CLASSES[rng.choice(3, p=row)] for row in truth]
    served = sharpness * truth + (1 - sharpness) / 3
    return served.tolist(), observed


def test_a_better_multiclass_challenger_is_found_and_an_equal_one_is_not() -> None:
    rng = np.random.default_rng(11)
    champion = multiclass_arm("1", *_simulated_multiclass(rng, 3000, 0.3))
    better = multiclass_arm("2", *_simulated_multiclass(rng, 3000, 1.0))
    equal = multiclass_arm("2", *_simulated_multiclass(rng, 3000, 0.3))
    for challenger, verdict in (
        (better, "better than the baseline"),
        (equal, "no significant difference in log loss"),
    ):
        report = ab_report(
            "pets",
            [*champion[0], *challenger[0]],
            [*champion[1], *challenger[1]],
            task="multiclass_classification",
            classes=CLASSES,
            baseline="1",
        )
        (comparison,) = report.comparisons
        assert comparison.verdict == verdict
    assert comparison.difference_ci.low < 0 < comparison.difference_ci.high


CHAMPION_PREDICTIONS = [10.0, 12.5, 9.0, 14.0, 11.0, 8.5]
CHAMPION_VALUES = [11.0, 10.0, 9.5, 17.0, 10.0, 12.0]
CHALLENGER_PREDICTIONS = [10.5, 11.0, 13.0, 9.0, 15.5]
CHALLENGER_VALUES = [10.0, 11.5, 12.0, 9.5, 14.0]


def test_regression_arms_match_scikit_learn_and_scipy() -> None:
    champion = regression_arm("1", CHAMPION_PREDICTIONS, CHAMPION_VALUES)
    challenger = regression_arm("2", CHALLENGER_PREDICTIONS, CHALLENGER_VALUES)
    report = ab_report(
        "pets",
        [*champion[0], *challenger[0]],
        [*champion[1], *challenger[1]],
        task="regression",
        baseline="1",
        min_labelled=2,
    )
    assert report.task == "regression" and report.notes == ()
    errors = {}
    for quality, predicted, observed in (
        (report.arms[0], CHAMPION_PREDICTIONS, CHAMPION_VALUES),
        (report.arms[1], CHALLENGER_PREDICTIONS, CHALLENGER_VALUES),
    ):
        mse = mean_squared_error(observed, predicted)
        assert quality.mse == pytest.approx(mse)
        assert quality.rmse == pytest.approx(math.sqrt(mse))
        assert quality.mae == pytest.approx(mean_absolute_error(observed, predicted))
        residuals = np.subtract(predicted, observed)
        assert quality.mse_ci is not None and quality.mae_ci is not None
        assert (quality.mse_ci.low, quality.mse_ci.high) == pytest.approx(_normal_ci(residuals**2))
        assert (quality.mae_ci.low, quality.mae_ci.high) == pytest.approx(
            _normal_ci(np.abs(residuals))
        )
        assert quality.mean_observed == pytest.approx(np.mean(observed))
        assert quality.mean_prediction == pytest.approx(np.mean(predicted))
        assert quality.accuracy is None and quality.log_loss is None
        errors[quality.version] = residuals

    (comparison,) = report.comparisons
    assert (comparison.metric, comparison.secondary_metric) == ("squared_error", "absolute_error")
    squared = (errors["2"] ** 2, errors["1"] ** 2)
    welch = stats.ttest_ind(*squared, equal_var=False)
    assert comparison.difference == pytest.approx(squared[0].mean() - squared[1].mean())
    assert comparison.p_value == pytest.approx(welch.pvalue)
    se = math.sqrt(squared[0].var(ddof=1) / 5 + squared[1].var(ddof=1) / 6)
    assert comparison.difference_ci.low == pytest.approx(comparison.difference - 1.959964 * se)
    absolute = (np.abs(errors["2"]), np.abs(errors["1"]))
    assert comparison.secondary_difference == pytest.approx(absolute[0].mean() - absolute[1].mean())
    assert comparison.secondary_p_value == pytest.approx(
        stats.ttest_ind(*absolute, equal_var=False).pvalue
    )
    assert comparison.verdict == "no significant difference in squared error"


def test_a_better_regression_challenger_is_found_and_an_equal_one_is_not() -> None:
    rng = np.random.default_rng(5)
    truth = rng.normal(50, 10, 6000)
    values = (truth + rng.normal(0, 2, 6000)).tolist()
    close = (truth + rng.normal(0, 1, 6000)).tolist()
    noisy = (truth + rng.normal(0, 3, 6000)).tolist()
    champion = regression_arm("1", noisy[:3000], values[:3000])
    for challenger, verdict in (
        (regression_arm("2", close[3000:], values[3000:]), "better than the baseline"),
        (
            regression_arm("2", noisy[3000:], values[3000:]),
            "no significant difference in squared error",
        ),
    ):
        report = ab_report(
            "pets",
            [*champion[0], *challenger[0]],
            [*champion[1], *challenger[1]],
            task="regression",
        )
        (comparison,) = report.comparisons
        assert comparison.verdict == verdict
        assert report.baseline == "1"  # the oldest of two equally busy arms
    assert comparison.difference_ci.low < 0 < comparison.difference_ci.high


def test_wrong_kind_of_feedback_and_missing_outputs_are_counted_and_left_out() -> None:
    captures, feedback = regression_arm("1", [1.0, 2.0, 3.0], [1.5, 2.0, 2.0])
    as_labels = [_feedback(f.prediction_id, label="dog") for f in feedback[:2]]
    without_prediction = _capture(new_prediction_ids(1)[0], "1", label="dog")
    report = ab_report(
        "pets",
        [*captures, without_prediction],
        [*feedback, *as_labels, _feedback(without_prediction.prediction_id, value=4.0)],
        task="regression",
        min_labelled=2,
    )
    (quality,) = report.arms
    assert (quality.served, quality.labelled) == (4, 3)
    assert quality.mse == pytest.approx(mean_squared_error([1.5, 2.0, 2.0], [1.0, 2.0, 3.0]))
    assert report.feedback_received == 6 and report.feedback_duplicates == 0
    assert report.notes == (
        "2 feedback records carrying a label, the wrong kind of outcome for a regression model, "
        "were left out",
        "1 labelled predictions without a prediction were left out",
    )

    captures, feedback = multiclass_arm("1", CHAMPION_ROWS, CHAMPION_OBSERVED)
    as_values = [_feedback(f.prediction_id, value=1.0) for f in feedback]
    unknown = _feedback(captures[0].prediction_id, label="bird")
    unknown = unknown.model_copy(update={"received_at": T0 + timedelta(hours=2)})
    report = ab_report(
        "pets",
        captures,
        [*feedback, *as_values, unknown],
        task="multiclass_classification",
        classes=CLASSES,
    )
    (quality,) = report.arms
    assert quality.labelled == 5  # the first prediction's latest word names no class it has
    assert quality.log_loss == pytest.approx(
        log_loss(CHAMPION_OBSERVED[1:], CHAMPION_ROWS[1:], labels=list(CLASSES))
    )
    assert report.notes[:2] == (
        "6 feedback records carrying a value, the wrong kind of outcome for a multiclass "
        "classification model, were left out",
        "1 outcomes naming a class the model does not have were left out",
    )
