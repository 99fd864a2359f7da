"""The A/B report: each arm's quality on ground-truth feedback, their difference, and a sample
ratio mismatch check on how traffic was actually split.

Captures (one per prediction, from the window) are joined with feedback records by
``prediction_id`` (the latest word on each, at most ``FEEDBACK_PER_PREDICTION`` lines read per
prediction); an arm is a model version (the bundle version the capture names). Each arm is
scored, each other arm compared with the baseline (the champion the caller names; else the arm
that served most) once both have ``min_labelled`` outcomes, and the served counts tested against
the intended split, with the statistics of ``abtest.statistics``; what was left out or cannot be
trusted is said in the report's notes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from lambdaserve.abtest.statistics import (
    ArmQuality,
    ArmSample,
    Comparison,
    SampleRatio,
    arm_quality,
    compare_arms,
    sample_ratio_test,
)
from lambdaserve.kernel.artifacts import version_order
from lambdaserve.kernel.capture import CaptureRecord, FeedbackRecord
from lambdaserve.kernel.errors import InvalidInputError
from lambdaserve.kernel.manifest import ClassLabel
from lambdaserve.kernel.times import as_utc

#: Feedback lines read per prediction: more are someone resending (or flooding) the same id.
FEEDBACK_PER_PREDICTION = 10


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
    scored = {version: arm_quality(version, arm) for version, arm in sorted(arms.items())}
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
        ratio = sample_ratio_test(served, expected_share)
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
) -> tuple[dict[str, ArmSample], dict[str, tuple[str, float, ClassLabel]]]:
    """Each version's arm (its served count) and every prediction's version, score and label."""
    arms: dict[str, ArmSample] = {}
    predictions: dict[str, tuple[str, float, ClassLabel]] = {}
    for record in captures:
        if record.model_name != model_name:
            continue
        arms.setdefault(record.model_version, ArmSample()).served += 1
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
    arms: dict[str, ArmSample],
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
        comparisons.append(
            compare_arms(version, base, (losses, base_losses), (correct, base_correct))
        )
    return comparisons
