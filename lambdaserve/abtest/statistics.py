"""The A/B statistics: per-arm estimates, the comparison of two arms and the sample ratio test.

They know nothing of captures or feedback: an arm is its served count and, per labelled
prediction, the outcome, the score and whether the predicted label was right. Per arm: accuracy
with a Wilson 95% interval, log loss and Brier score with normal 95% intervals, ROC AUC when
both classes were observed. An arm against the baseline: log loss, a proper scoring rule, is the
primary metric (Welch's t on the per-prediction losses); accuracy is compared with a
two-proportion z-test. SRM: a chi-square goodness-of-fit test of the served counts against the
intended split; p < 0.001 means the split itself is broken (assignment, logging or filtering),
and no difference can be trusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

Z95 = 1.959963984540054
SRM_ALPHA = 0.001
EPSILON = 1e-15


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class ArmQuality:
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


@dataclass(frozen=True)
class Comparison:
    version: str
    baseline: str
    log_loss_difference: float
    log_loss_difference_ci: Interval
    log_loss_p_value: float
    accuracy_difference: float
    accuracy_p_value: float
    verdict: str


@dataclass(frozen=True)
class SampleRatio:
    expected_share: dict[str, float]
    observed_share: dict[str, float]
    p_value: float
    mismatch: bool


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


@dataclass
class ArmSample:
    """One arm as the statistics see it: how many predictions it served and, per labelled one,
    the outcome (1: the positive class), the score and whether the predicted label was right."""

    served: int = 0
    y: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    correct: list[int] = field(default_factory=list)


def arm_quality(version: str, arm: ArmSample) -> tuple[ArmQuality, np.ndarray, np.ndarray]:
    """The arm's estimates, with its per-prediction log losses and hits (1.0: right), which
    ``compare_arms`` tests; an arm without labelled predictions has counts only."""
    n = len(arm.y)
    if n == 0:
        return ArmQuality(version, arm.served, 0), np.array([]), np.array([])
    y = np.array(arm.y, dtype=np.float64)
    p = np.clip(np.array(arm.scores, dtype=np.float64), EPSILON, 1 - EPSILON)
    losses = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    squared = (p - y) ** 2
    correct = np.array(arm.correct, dtype=np.float64)
    quality = ArmQuality(
        version=version,
        served=arm.served,
        labelled=n,
        accuracy=float(correct.mean()),
        accuracy_ci=wilson(int(correct.sum()), n),
        log_loss=float(losses.mean()),
        log_loss_ci=_mean_interval(losses),
        brier=float(squared.mean()),
        brier_ci=_mean_interval(squared),
        roc_auc=_roc_auc(y.astype(np.int64), p),
        observed_positive_rate=float(y.mean()),
        mean_score=float(p.mean()),
    )
    return quality, losses, correct


def compare_arms(
    version: str,
    baseline: str,
    losses: tuple[np.ndarray, np.ndarray],
    correct: tuple[np.ndarray, ...],
) -> Comparison:
    """``version``'s arm against ``baseline``'s: ``losses`` and ``correct`` are (arm, baseline)
    pairs of per-prediction log losses and hits; the verdict is on log loss at p < 0.05."""
    arm, base = losses
    difference = float(arm.mean() - base.mean())
    se = math.sqrt(arm.var(ddof=1) / len(arm) + base.var(ddof=1) / len(base))
    log_loss_p = float(stats.ttest_ind(arm, base, equal_var=False).pvalue) if se > 0 else 1.0
    hits, base_hits = correct
    pooled = (hits.sum() + base_hits.sum()) / (len(hits) + len(base_hits))
    accuracy_se = math.sqrt(pooled * (1 - pooled) * (1 / len(hits) + 1 / len(base_hits)))
    accuracy_difference = float(hits.mean() - base_hits.mean())
    accuracy_p = (
        float(2 * stats.norm.sf(abs(accuracy_difference) / accuracy_se)) if accuracy_se else 1.0
    )
    if log_loss_p >= 0.05:
        verdict = "no significant difference in log loss"
    else:
        verdict = "better than the baseline" if difference < 0 else "worse than the baseline"
    return Comparison(
        version=version,
        baseline=baseline,
        log_loss_difference=difference,
        log_loss_difference_ci=Interval(difference - Z95 * se, difference + Z95 * se),
        log_loss_p_value=log_loss_p,
        accuracy_difference=accuracy_difference,
        accuracy_p_value=accuracy_p,
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
