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
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from lambdaserve.drift.histograms import FeatureWindows
from lambdaserve.kernel.capture import CaptureRecord
from lambdaserve.kernel.encoding import normalize_category
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


class WindowAccumulator:
    """Bins captured rows on a reference ``chunk_rows`` at a time and merges the chunks.

    Values are converted as serving converts them: numbers (None = missing) for numeric features,
    ``normalize_category`` for categorical ones. A numeric feature's non-numeric value is counted
    as missing and noted; a row without a finite score is left out and noted.
    """

    def __init__(self, reference: ReferenceProfile, *, chunk_rows: int = CHUNK_ROWS) -> None:
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
        self.reference = reference
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

    def add(self, record: CaptureRecord) -> None:
        if not math.isfinite(record.probability):
            self.unscored += 1
            return
        features = record.features
        for name, values in self._values.items():
            values.append(features.get(name))
        self._scores.append(record.probability)
        if len(self._scores) >= self._chunk_rows:
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
            notes.append(f"{self.unscored} rows without a finite score were left out")
        return notes

    def _flush(self) -> None:
        if not self._scores:
            return
        columns = {name: self._column(name, values) for name, values in self._values.items()}
        scores = np.asarray(self._scores, dtype=np.float64)
        chunk = FeatureWindows.from_columns(self.reference, columns, scores)
        self._windows = self._windows.merge(chunk)
        self.rows += len(self._scores)
        self._values = {name: [] for name in self._values}
        self._scores = []

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
