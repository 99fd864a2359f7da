"""The A/B statistics: per-arm estimates, the comparison of two arms and the sample ratio test.

They know nothing of captures or feedback: an arm is its served count and, per labelled
prediction, its ``Outcome`` (``abtest.outcomes``). Per arm, by task: classification, accuracy
with a Wilson 95% interval and log loss with a normal 95% interval (binary adds the Brier score,
ROC AUC when both classes were observed, the observed positive rate and the mean score);
regression, the mean squared and mean absolute errors with normal 95% intervals, the RMSE, and
the mean observed value and prediction. An arm against the baseline: the primary metric is a
proper loss, log loss or squared error (Welch's t on the per-prediction losses, lower is
better); the secondary one is accuracy (a two-proportion z-test) or absolute error (Welch's t).
SRM: a chi-square goodness-of-fit test of the served counts against the intended split;
p < 0.001 means the split itself is broken (assignment, logging or filtering), and no difference
can be trusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from lambdaserve.abtest.outcomes import Outcome
from lambdaserve.kernel.manifest import Task

Z95 = 1.959963984540054
SRM_ALPHA = 0.001
ALPHA = 0.05


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class ArmQuality:
    """One arm's estimates; the fields of other tasks stay ``None``."""

    version: str
    served: int
    labelled: int
    accuracy: float | None = None
    accuracy_ci: Interval | None = None
    log_loss: float | None = None
    log_loss_ci: Interval | None = None
    brier: float | None = None
    brier_ci: Interval | None = None
    roc_auc: float | None = None
    observed_positive_rate: float | None = None
    mean_score: float | None = None
    mse: float | None = None
    mse_ci: Interval | None = None
    rmse: float | None = None
    mae: float | None = None
    mae_ci: Interval | None = None
    mean_observed: float | None = None
    mean_prediction: float | None = None


@dataclass(frozen=True)
class Comparison:
    """An arm against the baseline: ``difference`` is arm minus baseline on ``metric`` (a loss:
    below zero is better), tested at p < 0.05 for the ``verdict``; the secondary metric
    (accuracy or absolute error) is reported beside it."""

    version: str
    baseline: str
    metric: str
    difference: float
    difference_ci: Interval
    p_value: float
    secondary_metric: str
    secondary_difference: float
    secondary_p_value: float
    verdict: str


@dataclass(frozen=True)
class SampleRatio:
    expected_share: dict[str, float]
    observed_share: dict[str, float]
    p_value: float
    mismatch: bool


@dataclass
class ArmSample:
    """One arm as the statistics see it: how many predictions it served and the outcome of each
    labelled one."""

    served: int = 0
    outcomes: list[Outcome] = field(default_factory=list)


def wilson(successes: int, n: int) -> Interval:
    """Wilson score interval for a proportion (95%)."""
    p = successes / n
    denominator = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denominator
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def _mean_interval(values: np.ndarray) -> Interval:
    mean = float(values.mean())
    if len(values) < 2:
        return Interval(mean, mean)
    half = Z95 * float(values.std(ddof=1)) / math.sqrt(len(values))
    return Interval(mean - half, mean + half)


def _roc_auc(y: np.ndarray, scores: np.ndarray) -> float | None:
    """Mann-Whitney AUC (ties count half); None unless both classes were observed."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = stats.rankdata(scores)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _column(outcomes: list[Outcome], name: str) -> np.ndarray:
    return np.array([getattr(outcome, name) for outcome in outcomes], dtype=np.float64)


def arm_quality(
    version: str, task: Task, arm: ArmSample
) -> tuple[ArmQuality, np.ndarray, np.ndarray]:
    """The arm's estimates, with the per-prediction losses (log loss or squared error) and the
    secondary values (hits, 1.0: right; or absolute errors) ``compare_arms`` tests; an arm
    without labelled predictions has counts only."""
    n = len(arm.outcomes)
    if n == 0:
        return ArmQuality(version, arm.served, 0), np.array([]), np.array([])
    losses = _column(arm.outcomes, "loss")
    if task == "regression":
        errors = _column(arm.outcomes, "abs_error")
        quality = ArmQuality(
            version=version,
            served=arm.served,
            labelled=n,
            mse=float(losses.mean()),
            mse_ci=_mean_interval(losses),
            rmse=math.sqrt(float(losses.mean())),
            mae=float(errors.mean()),
            mae_ci=_mean_interval(errors),
            mean_observed=float(_column(arm.outcomes, "observed").mean()),
            mean_prediction=float(_column(arm.outcomes, "score").mean()),
        )
        return quality, losses, errors
    correct = _column(arm.outcomes, "hit")
    quality = ArmQuality(
        version=version,
        served=arm.served,
        labelled=n,
        accuracy=float(correct.mean()),
        accuracy_ci=wilson(int(correct.sum()), n),
        log_loss=float(losses.mean()),
        log_loss_ci=_mean_interval(losses),
    )
    if task == "binary_classification":
        quality = _binary_extras(quality, arm.outcomes)
    return quality, losses, correct


def _binary_extras(quality: ArmQuality, outcomes: list[Outcome]) -> ArmQuality:
    """Brier score, ROC AUC, observed positive rate and mean score of a binary arm."""
    y = _column(outcomes, "observed")
    p = _column(outcomes, "score")
    squared = (p - y) ** 2
    return replace(
        quality,
        brier=float(squared.mean()),
        brier_ci=_mean_interval(squared),
        roc_auc=_roc_auc(y.astype(np.int64), p),
        observed_positive_rate=float(y.mean()),
        mean_score=float(p.mean()),
    )


def welch(arm: np.ndarray, base: np.ndarray) -> tuple[float, Interval, float]:
    """The difference of means (arm - base), its normal 95% interval and Welch's t p-value
    (1.0 when neither arm varies)."""
    difference = float(arm.mean() - base.mean())
    se = math.sqrt(arm.var(ddof=1) / len(arm) + base.var(ddof=1) / len(base))
    p_value = float(stats.ttest_ind(arm, base, equal_var=False).pvalue) if se > 0 else 1.0
    return difference, Interval(difference - Z95 * se, difference + Z95 * se), p_value


def two_proportions(hits: np.ndarray, base_hits: np.ndarray) -> tuple[float, float]:
    """The difference of two proportions (arm - base) and its two-sided pooled z-test p-value."""
    pooled = (hits.sum() + base_hits.sum()) / (len(hits) + len(base_hits))
    se = math.sqrt(pooled * (1 - pooled) * (1 / len(hits) + 1 / len(base_hits)))
    difference = float(hits.mean() - base_hits.mean())
    return difference, float(2 * stats.norm.sf(abs(difference) / se)) if se else 1.0


def compare_arms(
    version: str,
    baseline: str,
    task: Task,
    losses: tuple[np.ndarray, np.ndarray],
    secondary: tuple[np.ndarray, np.ndarray],
) -> Comparison:
    """``version``'s arm against ``baseline``'s: ``losses`` and ``secondary`` are (arm,
    baseline) pairs of what ``arm_quality`` returns; the verdict is on the losses at p < 0.05."""
    difference, interval, p_value = welch(*losses)
    if task == "regression":
        metric, secondary_metric = "squared_error", "absolute_error"
        secondary_difference, _, secondary_p = welch(*secondary)
    else:
        metric, secondary_metric = "log_loss", "accuracy"
        secondary_difference, secondary_p = two_proportions(*secondary)
    if p_value >= ALPHA:
        verdict = f"no significant difference in {metric.replace('_', ' ')}"
    else:
        verdict = "better than the baseline" if difference < 0 else "worse than the baseline"
    return Comparison(
        version=version,
        baseline=baseline,
        metric=metric,
        difference=difference,
        difference_ci=interval,
        p_value=p_value,
        secondary_metric=secondary_metric,
        secondary_difference=secondary_difference,
        secondary_p_value=secondary_p,
        verdict=verdict,
    )


def sample_ratio_test(served: dict[str, int], expected: dict[str, float]) -> SampleRatio:
    """The served counts of ``expected``'s versions against their intended shares (relative
    weights, normalised here); a mismatch below ``SRM_ALPHA``."""
    versions = sorted(expected)
    total = sum(served.get(v, 0) for v in versions)
    observed = [served.get(v, 0) for v in versions]
    weights = np.array([expected[v] for v in versions], dtype=np.float64)
    p_value = float(stats.chisquare(observed, f_exp=weights / weights.sum() * total).pvalue)
    return SampleRatio(
        expected_share={v: float(expected[v] / weights.sum()) for v in versions},
        observed_share={v: served.get(v, 0) / total for v in versions},
        p_value=p_value,
        mismatch=p_value < SRM_ALPHA,
    )
