"""The scheduled drift job (DESIGN "Drift"): one window of captured predictions against each
model version's own training reference, one report per (model, version, window), written once.

The window comes from the *scheduled* time, never the wall clock::

    window_end   = floor(scheduled_time - lateness, window)
    window_start = window_end - window

so a retry of the same schedule computes the same window (and finds its reports already written),
and records arriving up to ``lateness`` after the window closed are still in it. Windows divide a
day, so they line up with the hourly capture partitions.

Captures are streamed: each model version's rows are binned ``chunk_rows`` at a time on its
reference's bins and merged into the running histograms, so memory does not grow with the window.
Features the capture policy masks or hashes cannot be compared with the reference and are
skipped with a note. Notifications (metrics, alarms) are sent before a report is committed, so a
failure between the two repeats a notification on retry rather than losing it (at least once).

>>> reports = run_drift(  # doctest: +SKIP
...     datetime(2026, 11, 27, 12, 5, tzinfo=UTC),  # window 10:00-11:00
...     captures=lambda start, end: read_captures(root, start, end),
...     references=bundle_baselines(LocalArtifactStore(root)),
...     reports=DriftReportStore(LocalReportFiles(root)),
... )
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from lambdaserve.drift.histograms import FeatureWindows
from lambdaserve.drift.report import (
    DriftReport,
    DriftReportStore,
    Persistence,
    ReportKey,
    SkippedFeature,
    aligned_counts,
    verdict_outcome,
)
from lambdaserve.drift.statistics import (
    compare,
    dataset_drift,
    fdr_drifted,
    persistent_drift,
)
from lambdaserve.kernel.artifacts import ArtifactStore, version_order
from lambdaserve.kernel.capture import CaptureRecord
from lambdaserve.kernel.encoding import normalize_category
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.kernel.manifest import REFERENCE_FILE
from lambdaserve.kernel.reference import NumericReference, ReferenceProfile
from lambdaserve.kernel.schema import MISSING_CATEGORY, FeatureSchema
from lambdaserve.kernel.times import as_utc

DEFAULT_WINDOW = timedelta(hours=1)
DEFAULT_LATENESS = timedelta(minutes=15)
DEFAULT_MIN_SAMPLES = 100
DEFAULT_PERSISTENCE = (2, 3)
#: Rows binned at once per model version: bounds memory at a few MB whatever the window holds.
CHUNK_ROWS = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY = timedelta(days=1)
_ALTERED = "masked or hashed by the capture policy: captured values cannot be compared with "
_ALTERED += "the training reference"


class DriftJobError(LambdaserveError):
    """The drift job could not judge a window (the message names the model version and why)."""


class Baseline(NamedTuple):
    """What a model version is compared with, and which captured fields are not comparable."""

    reference: ReferenceProfile
    schema: FeatureSchema
    altered: Collection[str]


CaptureSource = Callable[[datetime, datetime], Iterable[CaptureRecord]]
BaselineSource = Callable[[str, str], tuple[ReferenceProfile, FeatureSchema, Collection[str]]]
ReportCallback = Callable[[DriftReport], None]


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


def bundle_baselines(store: ArtifactStore, altered: Collection[str] = ()) -> BaselineSource:
    """Baselines from each version's verified bundle (``reference.json`` and the schema)."""
    skipped = frozenset(altered)

    def load(model_name: str, model_version: str) -> Baseline:
        bundle = store.open(model_name, model_version)
        if REFERENCE_FILE not in bundle.manifest.files:
            raise DriftJobError(
                f"bundle {model_name} v{model_version} has no {REFERENCE_FILE}; retrain it to "
                "give it a drift baseline"
            )
        try:
            reference = ReferenceProfile.model_validate_json(
                bundle.file(REFERENCE_FILE).read_bytes()
            )
        except ValidationError as exc:
            raise DriftJobError(
                f"{REFERENCE_FILE} of {model_name} v{model_version} is not a reference profile "
                f"({exc.error_count()} errors)"
            ) from exc
        return Baseline(reference, bundle.manifest.features, skipped)

    return load


# -- streaming windows ----------------------------------------------------------------------------


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


# -- the job --------------------------------------------------------------------------------------


@dataclass
class _Group:
    """One model version's share of the window; no accumulator when its report exists."""

    key: ReportKey
    accumulator: WindowAccumulator | None = None
    skipped: list[SkippedFeature] = field(default_factory=list)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _open_group(
    ident: tuple[str, str],
    end: datetime,
    references: BaselineSource,
    reports: DriftReportStore,
    chunk_rows: int,
) -> _Group | str:
    """A group ready to accumulate, or why this version cannot be judged."""
    name, version = ident
    try:
        key = ReportKey(name, version, end)
    except ValueError:
        return f"captures name an invalid model {name!r} version {version!r}"
    group = _Group(key=key)
    if reports.exists(key):
        return group
    try:
        reference, schema, altered = references(name, version)
    except LambdaserveError as exc:
        return f"{name} v{version}: {exc}"
    kept = {f: ref for f, ref in reference.features.items() if f not in altered}
    group.skipped = [
        SkippedFeature(feature=f, reason=_ALTERED) for f in reference.features if f in altered
    ]
    group.skipped += [
        SkippedFeature(feature=f, reason="the bundle's reference has no profile of it")
        for f in schema.names
        if f not in reference.features
    ]
    group.accumulator = WindowAccumulator(
        reference.model_copy(update={"features": kept}), chunk_rows=chunk_rows
    )
    return group


def _history(
    reports: DriftReportStore, key: ReportKey, window: timedelta, n: int
) -> list[DriftReport | None]:
    """The reports of the ``n - 1`` windows before ``key``'s, oldest first (None if absent)."""
    return [
        reports.get(ReportKey(key.model_name, key.model_version, key.window_end - i * window))
        for i in range(n - 1, 0, -1)
    ]


def _feature_outcome(report: DriftReport | None, feature: str) -> bool | None:
    if report is None:
        return None
    return next((r.outcome for r in report.features if r.feature == feature), None)


@dataclass(frozen=True, kw_only=True)
class _Rules:
    min_samples: int
    persistence: tuple[int, int]
    share: float
    fdr_alpha: float


def _report(
    group: _Group,
    span: DriftWindow,
    scheduled_time: datetime,
    reports: DriftReportStore,
    rules: _Rules,
    notes: Sequence[str],
    generated_at: datetime,
) -> DriftReport:
    accumulator = group.accumulator
    assert accumulator is not None
    windows = accumulator.result()
    results = compare(accumulator.reference, windows, min_samples=rules.min_samples)
    features, score = results[:-1], results[-1]
    dataset = dataset_drift(features, share=rules.share)
    k, n = rules.persistence
    previous = _history(reports, group.key, span.end - span.start, n)
    history = (*(p.outcome if p else None for p in previous), verdict_outcome(dataset.verdict))
    persistent_features = tuple(
        r.feature
        for r in features
        if persistent_drift([*(_feature_outcome(p, r.feature) for p in previous), r.outcome], k, n)
    )
    return DriftReport(
        model_name=group.key.model_name,
        model_version=group.key.model_version,
        window_start=span.start,
        window_end=span.end,
        scheduled_time=scheduled_time,
        rows=accumulator.rows,
        min_samples=rules.min_samples,
        features=tuple(features),
        score=score,
        dataset=dataset,
        fdr_alpha=rules.fdr_alpha,
        fdr_drifted=fdr_drifted(features, alpha=rules.fdr_alpha),
        persistent=persistent_drift(history, k, n),
        persistence=Persistence(k=k, n=n, history=history, features=persistent_features),
        skipped=tuple(group.skipped),
        notes=(*notes, *accumulator.notes),
        bins=aligned_counts(accumulator.reference, windows),
        generated_at=generated_at,
    )


def run_drift(
    scheduled_time: datetime,
    *,
    captures: CaptureSource,
    references: BaselineSource,
    reports: DriftReportStore,
    on_stored: ReportCallback | None = None,
    window: timedelta = DEFAULT_WINDOW,
    lateness: timedelta = DEFAULT_LATENESS,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    persistence: tuple[int, int] = DEFAULT_PERSISTENCE,
    share: float = 0.5,
    fdr_alpha: float = 0.05,
    chunk_rows: int = CHUNK_ROWS,
    clock: Callable[[], datetime] = _utc_now,
) -> list[DriftReport]:
    """Judge the window of ``scheduled_time``; return the reports this run wrote.

    Every model version seen in the window is compared with its own reference. A version whose
    report exists is skipped (so reruns write nothing). ``on_stored`` (metrics, alarms) is called
    with each new report once it is stored, never before: a notification that fails cannot lose
    the report, and a rerun that finds it does not count it twice. If some versions cannot be
    judged (no bundle, no reference) or notified, the others' reports are still written and
    DriftJobError then names the failures.
    """
    k, n = persistence
    if not 1 <= k <= n:
        raise ValueError(f"persistence needs 1 <= k <= n, got k={k}, n={n}")
    span = drift_window(scheduled_time, window=window, lateness=lateness)
    groups: dict[tuple[str, str], _Group | str] = {}
    outside = 0
    for record in captures(span.start, span.end):
        if not span.start <= as_utc(record.captured_at) < span.end:
            outside += 1
            continue
        ident = (record.model_name, record.model_version)
        group = groups.get(ident)
        if group is None:
            group = groups[ident] = _open_group(ident, span.end, references, reports, chunk_rows)
        if isinstance(group, _Group) and group.accumulator is not None:
            group.accumulator.add(record)
    notes = [f"{outside} captured records outside the window were ignored"] if outside else []
    rules = _Rules(
        min_samples=min_samples, persistence=persistence, share=share, fdr_alpha=fdr_alpha
    )
    written: list[DriftReport] = []
    failures = [g for g in groups.values() if isinstance(g, str)]
    ordered = sorted(
        (g for g in groups.values() if isinstance(g, _Group) and g.accumulator is not None),
        key=lambda g: (g.key.model_name, version_order(g.key.model_version)),
    )
    for group in ordered:
        label = f"{group.key.model_name} v{group.key.model_version}"
        try:
            report = _report(group, span, scheduled_time, reports, rules, notes, clock())
            stored = reports.put(report)
        except LambdaserveError as exc:
            failures.append(f"{label}: {exc}")
            continue
        if not stored:
            continue
        written.append(report)
        if on_stored is not None:
            try:
                on_stored(report)
            except LambdaserveError as exc:
                failures.append(f"{label}: its report was stored, but {exc}")
    if failures:
        raise DriftJobError(
            f"drift of window {span.start.isoformat()} to {span.end.isoformat()} failed for "
            f"{len(failures)} model version(s) ({'; '.join(failures)}); {len(written)} "
            "report(s) were written"
        )
    return written
