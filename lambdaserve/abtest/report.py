"""The A/B report: each arm's quality on ground-truth feedback, their difference, and a sample
ratio mismatch check on how traffic was actually split.

Captures (one per prediction, from the window) are joined with feedback records by
``prediction_id``; an arm is a model version (the bundle version the capture names). Per arm:
served and labelled counts, accuracy with a Wilson 95% interval, log loss and Brier score with
normal 95% intervals, ROC AUC when both classes were observed. Each other arm is compared with
the baseline (the champion): log loss, a proper scoring rule, is the primary metric (Welch's t on
the per-prediction losses); accuracy is compared with a two-proportion z-test. SRM: a chi-square
goodness-of-fit test of the served counts against the intended split; p < 0.001 means the split
itself is broken (assignment, logging or filtering), and no difference can be trusted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from scipy import stats

from lambdaserve.kernel.artifacts import version_order
from lambdaserve.kernel.capture import CaptureRecord, FeedbackRecord
from lambdaserve.kernel.errors import InvalidInputError
from lambdaserve.kernel.manifest import ClassLabel
from lambdaserve.kernel.times import as_utc

Z95 = 1.959963984540054
#: Feedback lines read per prediction: more are someone resending (or flooding) the same id.
FEEDBACK_PER_PREDICTION = 10
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


@dataclass(frozen=True)
class ABReport:
    model_name: str
    baseline: str
    arms: tuple[ArmQuality, ...]
    comparisons: tuple[Comparison, ...]
    sample_ratio: SampleRatio | None
    feedback_received: int
    feedback_unmatched: int
    feedback_duplicates: int
    notes: tuple[str, ...] = field(default=())


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
class _Arm:
    served: int = 0
    y: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    correct: list[int] = field(default_factory=list)


def _arm_quality(version: str, arm: _Arm) -> tuple[ArmQuality, np.ndarray, np.ndarray]:
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


def _compare(
    version: str,
    baseline: str,
    losses: tuple[np.ndarray, np.ndarray],
    correct: tuple[np.ndarray, ...],
) -> Comparison:
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


def _sample_ratio(served: dict[str, int], expected: dict[str, float]) -> SampleRatio:
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


def split_stream(
    records: Iterable[CaptureRecord | FeedbackRecord], start: datetime, end: datetime
) -> tuple[list[CaptureRecord], list[FeedbackRecord]]:
    """The captures of [start, end) and every feedback record of a capture stream (feedback may
    arrive after the window it labels)."""
    captures: list[CaptureRecord] = []
    feedback: list[FeedbackRecord] = []
    for record in records:
        if isinstance(record, FeedbackRecord):
            feedback.append(record)
        elif start <= record.captured_at < end:
            captures.append(record)
    return captures, feedback


def ab_report(
    model_name: str,
    captures: Iterable[CaptureRecord],
    feedback: Iterable[FeedbackRecord],
    *,
    positive_class: ClassLabel,
    baseline: str | None = None,
    expected_share: dict[str, float] | None = None,
    min_labelled: int = 100,
) -> ABReport:
    """Join, score and compare; ``expected_share`` maps versions to their intended share."""
    arms, predictions = _served_arms(model_name, captures)
    outcomes = _latest_outcomes(model_name, feedback)
    unmatched, unscored = _label_arms(arms, predictions, outcomes.labels, positive_class)
    served = {version: arm.served for version, arm in arms.items()}
    # Default baseline: the arm that served most (ties: the oldest version).
    busiest = min(served, key=lambda v: (-served[v], version_order(v)))
    base = baseline if baseline in arms else busiest
    scored = {version: _arm_quality(version, arm) for version, arm in sorted(arms.items())}
    notes: list[str] = []
    if outcomes.over_cap:
        notes.append(
            f"{outcomes.over_cap} feedback lines beyond {FEEDBACK_PER_PREDICTION} for one "
            "prediction were not read"
        )
    if unscored:
        notes.append(f"{unscored} labelled predictions without a finite score were left out")
    if baseline is not None and baseline not in arms:
        notes.append(f"baseline {baseline} served nothing in the window; using {base}")
    comparisons = _comparisons(scored, base, min_labelled, notes)
    ratio = None
    if expected_share:
        ratio = _sample_ratio(served, expected_share)
        if ratio.mismatch:
            notes.append(
                f"sample ratio mismatch (p = {ratio.p_value:.2g}): traffic did not split as "
                "intended, so the comparison cannot be trusted"
            )
    return ABReport(
        model_name=model_name,
        baseline=base,
        arms=tuple(quality for quality, _, _ in scored.values()),
        comparisons=tuple(comparisons),
        sample_ratio=ratio,
        feedback_received=outcomes.received,
        feedback_unmatched=unmatched,
        feedback_duplicates=outcomes.duplicates,
        notes=tuple(notes),
    )


def _served_arms(
    model_name: str, captures: Iterable[CaptureRecord]
) -> tuple[dict[str, _Arm], dict[str, tuple[str, float, ClassLabel]]]:
    """Each version's arm (its served count) and every prediction's version, score and label."""
    arms: dict[str, _Arm] = {}
    predictions: dict[str, tuple[str, float, ClassLabel]] = {}
    for record in captures:
        if record.model_name != model_name:
            continue
        arms.setdefault(record.model_version, _Arm()).served += 1
        predictions[record.prediction_id] = (record.model_version, record.probability, record.label)
    if not arms:
        raise InvalidInputError(f"no captured predictions of {model_name} in the window")
    return arms, predictions


@dataclass
class _Outcomes:
    labels: dict[str, ClassLabel] = field(default_factory=dict)
    received: int = 0
    duplicates: int = 0
    over_cap: int = 0


def _latest_outcomes(model_name: str, feedback: Iterable[FeedbackRecord]) -> _Outcomes:
    """The latest word on each prediction, by when it was received (not by the order the
    stream is read in: locally its files sort by process id, so a correction sent after a
    restart could be read first); past FEEDBACK_PER_PREDICTION lines one prediction gets,
    nothing more is read for it."""
    outcomes = _Outcomes()
    latest: dict[str, tuple[datetime, ClassLabel]] = {}
    lines: dict[str, int] = {}
    for item in feedback:
        if item.model_name != model_name:
            continue
        outcomes.received += 1
        seen = lines.get(item.prediction_id, 0)
        lines[item.prediction_id] = seen + 1
        if seen >= FEEDBACK_PER_PREDICTION:
            outcomes.over_cap += 1
            continue
        outcomes.duplicates += seen > 0
        known = latest.get(item.prediction_id)
        if known is None or as_utc(item.received_at) >= known[0]:
            latest[item.prediction_id] = (as_utc(item.received_at), item.label)
    outcomes.labels = {prediction_id: label for prediction_id, (_, label) in latest.items()}
    return outcomes


def _label_arms(
    arms: dict[str, _Arm],
    predictions: dict[str, tuple[str, float, ClassLabel]],
    labels: dict[str, ClassLabel],
    positive_class: ClassLabel,
) -> tuple[int, int]:
    """Add each labelled prediction to its arm; the outcomes for predictions outside the
    window (unmatched) and those without a finite score (unscored), as counts."""
    unmatched = unscored = 0
    for prediction_id, observed in labels.items():
        if prediction_id not in predictions:
            unmatched += 1
            continue
        version, probability, predicted = predictions[prediction_id]
        if not math.isfinite(probability):
            # One NaN makes an arm's mean log loss NaN and its test "no difference" (as drift).
            unscored += 1
            continue
        arm = arms[version]
        arm.y.append(int(observed == positive_class))
        arm.scores.append(probability)
        arm.correct.append(int(observed == predicted))
    return unmatched, unscored


def _comparisons(
    scored: dict[str, tuple[ArmQuality, np.ndarray, np.ndarray]],
    base: str,
    min_labelled: int,
    notes: list[str],
) -> list[Comparison]:
    """Every arm against ``base``, when both have ``min_labelled`` outcomes (else a note)."""
    comparisons: list[Comparison] = []
    base_quality, base_losses, base_correct = scored[base]
    for version, (quality, losses, correct) in scored.items():
        if version == base:
            continue
        if min(quality.labelled, base_quality.labelled) < min_labelled:
            notes.append(
                f"{version} vs {base}: fewer than {min_labelled} labelled predictions in an arm "
                f"({quality.labelled} and {base_quality.labelled}): not compared"
            )
            continue
        comparisons.append(_compare(version, base, (losses, base_losses), (correct, base_correct)))
    return comparisons
