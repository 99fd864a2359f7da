"""A drift window: the span of captures a scheduled run judges, and the streaming of its rows
into histograms on a model version's reference (DESIGN "Drift").

The window comes from the *scheduled* time, never the wall clock::

    window_end   = floor(scheduled_time - lateness, window)
    window_start = window_end - window

so a retry of the same schedule computes the same window, and records arriving up to
``lateness`` after the window closed are still in it. Windows divide a day, so they line up with
the hourly capture partitions.

Captures are streamed: a model version's rows are binned ``chunk_rows`` at a time on its
reference's bins and merged into the running histograms, so memory does not grow with the window.
The model's output is followed per task: the score (binary probability, regression prediction)
or the predicted class (multiclass).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from lambdaserve.drift.histograms import FeatureWindows, reference_output
from lambdaserve.drift.output_windows import OutputKind
from lambdaserve.kernel.capture import CaptureRecord
from lambdaserve.kernel.encoding import normalize_category
from lambdaserve.kernel.manifest import Task, class_key
from lambdaserve.kernel.reference import NumericReference, ReferenceProfile
from lambdaserve.kernel.schema import MISSING_CATEGORY

DEFAULT_WINDOW = timedelta(hours=1)
DEFAULT_LATENESS = timedelta(minutes=15)
#: Rows binned at once per model version: bounds memory at a few MB whatever the window holds.
CHUNK_ROWS = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class DriftWindow:
    start: datetime
    end: datetime


def drift_window(
    scheduled_time: datetime,
    *,
    window: timedelta = DEFAULT_WINDOW,
    lateness: timedelta = DEFAULT_LATENESS,
) -> DriftWindow:
    """The window a run scheduled at ``scheduled_time`` judges (see the module docstring)."""
    if scheduled_time.tzinfo is None:
        raise ValueError("scheduled_time must be timezone-aware")
    if window < timedelta(minutes=1) or _DAY % window or window % timedelta(minutes=1):
        raise ValueError(f"the window must be whole minutes dividing a day, got {window}")
    if lateness < timedelta(0):
        raise ValueError(f"lateness cannot be negative, got {lateness}")
    end = _EPOCH + ((scheduled_time - lateness - _EPOCH) // window) * window
    return DriftWindow(start=end - window, end=end)


def output_of(task: Task) -> OutputKind:
    """What drift follows of a model's output: the predicted class of a multiclass classifier,
    the score (``CaptureRecord.score``) of the others."""
    return "predicted_class" if task == "multiclass_classification" else "score"


def implied_task(reference: ReferenceProfile) -> Task:
    """The task a reference implies when no manifest says: multiclass when it counts predicted
    classes, binary (as every reference before tasks) when it has a score histogram."""
    if reference.predicted_classes is not None:
        return "multiclass_classification"
    return "binary_classification"


_LACKING = {
    "binary_classification": "a finite score",
    "regression": "a finite prediction",
    "multiclass_classification": "a predicted class",
}


class WindowAccumulator:
    """Bins captured rows on a reference ``chunk_rows`` at a time and merges the chunks.

    Values are converted as serving converts them: numbers (None = missing) for numeric features,
    ``normalize_category`` for categorical ones. A numeric feature's non-numeric value is counted
    as missing and noted. The model's output follows ``task`` (by default what the reference
    profiles): the score for binary classification and regression, the predicted class
    (``class_key`` of the label) for multiclass; a row without it (no finite score, no label) is
    left out and noted.
    """

    def __init__(
        self,
        reference: ReferenceProfile,
        *,
        chunk_rows: int = CHUNK_ROWS,
        task: Task | None = None,
    ) -> None:
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
        self.reference = reference
        self.task = task or implied_task(reference)
        self.output = output_of(self.task)
        if reference_output(reference) != self.output:
            raise ValueError(f"the reference profiles no output of a {self.task} model")
        self.rows = 0
        self.not_numeric: Counter[str] = Counter()
        self.unscored = 0
        self._chunk_rows = chunk_rows
        self._numeric = {
            name: isinstance(ref, NumericReference) for name, ref in reference.features.items()
        }
        self._windows = FeatureWindows.empty(reference)
        self._values: dict[str, list[object]] = {name: [] for name in reference.features}
        self._scores: list[float] = []
        self._classes: list[str] = []

    def add(self, record: CaptureRecord) -> None:
        if self.output == "predicted_class":
            if record.label is None:
                self.unscored += 1
                return
            self._classes.append(class_key(record.label))
        else:
            score = record.score
            if score is None or not math.isfinite(score):
                self.unscored += 1
                return
            self._scores.append(score)
        features = record.features
        for name, values in self._values.items():
            values.append(features.get(name))
        if len(self._scores) + len(self._classes) >= self._chunk_rows:
            self._flush()

    def result(self) -> FeatureWindows:
        self._flush()
        return self._windows

    @property
    def notes(self) -> list[str]:
        notes = [
            f"{count} values of {name} were not numbers and were counted as missing"
            for name, count in sorted(self.not_numeric.items())
        ]
        if self.unscored:
            notes.append(f"{self.unscored} rows without {_LACKING[self.task]} were left out")
        return notes

    def _flush(self) -> None:
        pending = len(self._scores) + len(self._classes)
        if not pending:
            return
        columns = {name: self._column(name, values) for name, values in self._values.items()}
        scores = np.asarray(self._scores, dtype=np.float64) if self.output == "score" else None
        classes = self._classes if self.output == "predicted_class" else None
        chunk = FeatureWindows.from_columns(self.reference, columns, scores, classes=classes)
        self._windows = self._windows.merge(chunk)
        self.rows += pending
        self._values = {name: [] for name in self._values}
        self._scores, self._classes = [], []

    def _column(self, name: str, values: list[object]) -> npt.NDArray[np.generic]:
        if not self._numeric[name]:
            return np.array(
                [MISSING_CATEGORY if v is None else normalize_category(v) for v in values],
                dtype=object,
            )
        try:
            return np.array(values, dtype=np.float64)  # None becomes NaN, i.e. missing
        except (TypeError, ValueError):
            numbers = [_number(v) for v in values]
            self.not_numeric[name] += sum(
                1 for v, n in zip(values, numbers, strict=True) if v is not None and math.isnan(n)
            )
            return np.array(numbers, dtype=np.float64)


def _number(value: object) -> float:
    if isinstance(value, int | float):
        return float(value)
    return math.nan
