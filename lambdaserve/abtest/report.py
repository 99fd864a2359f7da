"""The A/B report: each arm's quality on ground-truth feedback, their difference, and a sample
ratio mismatch check on how traffic was actually split.

Captures (one per prediction, from the window) are joined with feedback records by
``prediction_id`` (the latest word on each, at most ``FEEDBACK_PER_PREDICTION`` lines read per
prediction); an arm is a model version (the bundle version the capture names). Each labelled
prediction is scored for the model's task (``abtest.outcomes``), each arm scored, each other
arm compared with the baseline (the champion the caller names; else the arm that served most)
once both have ``min_labelled`` outcomes, and the served counts tested against the intended
split, with the statistics of ``abtest.statistics``; what was left out or cannot be trusted is
said in the report's notes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from lambdaserve.abtest.outcomes import TaskScoring, Unscored
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
from lambdaserve.kernel.manifest import ClassLabel, Task
from lambdaserve.kernel.times import as_utc

#: Feedback lines read per prediction: more are someone resending (or flooding) the same id.
FEEDBACK_PER_PREDICTION = 10

#: What a capture of each task carries, for the note on captures without it.
_OUTPUTS: dict[Task, str] = {
    "binary_classification": "a probability and a label",
    "multiclass_classification": "a label and every class's probability",
    "regression": "a prediction",
}


@dataclass(frozen=True)
class ABReport:
    model_name: str
    task: Task
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
    task: Task,
    classes: Sequence[ClassLabel] = (),
    positive_class: ClassLabel | None = None,
    baseline: str | None = None,
    expected_share: dict[str, float] | None = None,
    min_labelled: int = 100,
) -> ABReport:
    """Join, score and compare; ``task``, ``classes`` and ``positive_class`` (binary only) are
    the model's (its manifest's), ``expected_share`` maps versions to their intended share."""
    scoring = TaskScoring(task, tuple(classes), positive_class)
    arms, predictions = _served_arms(model_name, captures)
    outcomes = _latest_outcomes(model_name, feedback, scoring)
    unmatched, unscored = _label_arms(arms, predictions, outcomes.observed, scoring)
    served = {version: arm.served for version, arm in arms.items()}
    # Default baseline: the arm that served most (ties: the oldest version).
    busiest = min(served, key=lambda v: (-served[v], version_order(v)))
    base = baseline if baseline in arms else busiest
    scored = {v: arm_quality(v, task, arm) for v, arm in sorted(arms.items())}
    notes = _left_out_notes(outcomes, unscored, task)
    if baseline is not None and baseline not in arms:
        notes.append(f"baseline {baseline} served nothing in the window; using {base}")
    comparisons = _comparisons(scored, task, base, min_labelled, notes)
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
        task=task,
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
) -> tuple[dict[str, ArmSample], dict[str, CaptureRecord]]:
    """Each version's arm (its served count) and every prediction's capture, by id."""
    arms: dict[str, ArmSample] = {}
    predictions: dict[str, CaptureRecord] = {}
    for record in captures:
        if record.model_name != model_name:
            continue
        arms.setdefault(record.model_version, ArmSample()).served += 1
        predictions[record.prediction_id] = record
    if not arms:
        raise InvalidInputError(f"no captured predictions of {model_name} in the window")
    return arms, predictions


@dataclass
class _Outcomes:
    observed: dict[str, FeedbackRecord] = field(default_factory=dict)
    received: int = 0
    duplicates: int = 0
    over_cap: int = 0
    wrong_kind: int = 0


def _latest_outcomes(
    model_name: str, feedback: Iterable[FeedbackRecord], scoring: TaskScoring
) -> _Outcomes:
    """The latest word on each prediction, by when it was received (not by the order the
    stream is read in: locally its files sort by process id, so a correction sent after a
    restart could be read first); past FEEDBACK_PER_PREDICTION lines one prediction gets,
    nothing more is read for it. Feedback of the wrong kind for the task is counted, not read."""
    outcomes = _Outcomes()
    lines: dict[str, int] = {}
    for item in feedback:
        if item.model_name != model_name:
            continue
        outcomes.received += 1
        if not scoring.fits(item):
            outcomes.wrong_kind += 1
            continue
        seen = lines.get(item.prediction_id, 0)
        lines[item.prediction_id] = seen + 1
        if seen >= FEEDBACK_PER_PREDICTION:
            outcomes.over_cap += 1
            continue
        outcomes.duplicates += seen > 0
        known = outcomes.observed.get(item.prediction_id)
        if known is None or as_utc(item.received_at) >= as_utc(known.received_at):
            outcomes.observed[item.prediction_id] = item
    return outcomes


def _label_arms(
    arms: dict[str, ArmSample],
    predictions: dict[str, CaptureRecord],
    observed: dict[str, FeedbackRecord],
    scoring: TaskScoring,
) -> tuple[int, Counter[Unscored]]:
    """Add each labelled prediction's outcome to its arm; the outcomes for predictions outside
    the window (unmatched, a count) and those that could not be scored (counted by why)."""
    unmatched = 0
    unscored: Counter[Unscored] = Counter()
    for prediction_id, item in observed.items():
        capture = predictions.get(prediction_id)
        if capture is None:
            unmatched += 1
            continue
        outcome = scoring.score(capture, item)
        if isinstance(outcome, str):
            unscored[outcome] += 1
        else:
            arms[capture.model_version].outcomes.append(outcome)
    return unmatched, unscored


def _left_out_notes(outcomes: _Outcomes, unscored: Counter[Unscored], task: Task) -> list[str]:
    """What was not read or not scored, one note per reason."""
    notes: list[str] = []
    if outcomes.over_cap:
        notes.append(
            f"{outcomes.over_cap} feedback lines beyond {FEEDBACK_PER_PREDICTION} for one "
            "prediction were not read"
        )
    if outcomes.wrong_kind:
        kind = "a value" if task != "regression" else "a label"
        notes.append(
            f"{outcomes.wrong_kind} feedback records carrying {kind}, the wrong kind of outcome "
            f"for a {task.replace('_', ' ')} model, were left out"
        )
    if unscored["missing_outputs"]:
        notes.append(
            f"{unscored['missing_outputs']} labelled predictions without {_OUTPUTS[task]} "
            "were left out"
        )
    if unscored["non_finite"]:
        notes.append(
            f"{unscored['non_finite']} labelled predictions without a finite score were left out"
        )
    if unscored["unknown_class"]:
        notes.append(
            f"{unscored['unknown_class']} outcomes naming a class the model does not have "
            "were left out"
        )
    return notes


def _comparisons(
    scored: dict[str, tuple[ArmQuality, np.ndarray, np.ndarray]],
    task: Task,
    base: str,
    min_labelled: int,
    notes: list[str],
) -> list[Comparison]:
    """Every arm against ``base``, when both have ``min_labelled`` outcomes (else a note)."""
    comparisons: list[Comparison] = []
    base_quality, base_losses, base_secondary = scored[base]
    for version, (quality, losses, secondary) in scored.items():
        if version == base:
            continue
        if min(quality.labelled, base_quality.labelled) < min_labelled:
            notes.append(
                f"{version} vs {base}: fewer than {min_labelled} labelled predictions in an arm "
                f"({quality.labelled} and {base_quality.labelled}): not compared"
            )
            continue
        comparisons.append(
            compare_arms(version, base, task, (losses, base_losses), (secondary, base_secondary))
        )
    return comparisons
