"""The scheduled drift job (DESIGN "Drift"): one window of captured predictions against each
model version's own training reference, one report per (model, version, window), written once.

The window comes from the *scheduled* time, never the wall clock (``drift.windows``), so a retry
of the same schedule computes the same window and finds its reports already written. Captures
are streamed into each version's histograms (``drift.windows.WindowAccumulator``), and each
version's report is built by ``drift.version_report``. Features the capture policy masks or
hashes cannot be compared with the reference and are skipped with a note. Notifications
(metrics, alarms) are sent before a report is committed, so a failure between the two repeats a
notification on retry rather than losing it (at least once).

>>> reports = run_drift(  # doctest: +SKIP
...     datetime(2026, 11, 27, 12, 5, tzinfo=UTC),  # window 10:00-11:00
...     captures=lambda start, end: read_captures(root, start, end),
...     references=bundle_baselines(LocalArtifactStore(root)),
...     reports=DriftReportStore(LocalReportFiles(root)),
... )
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from pydantic import ValidationError

from lambdaserve.drift.histograms import reference_output
from lambdaserve.drift.report import DriftReport, ReportKey, SkippedFeature
from lambdaserve.drift.report_store import DriftReportStore
from lambdaserve.drift.version_report import DriftRules, VersionGroup, build_report
from lambdaserve.drift.windows import (
    CHUNK_ROWS,
    DEFAULT_LATENESS,
    DEFAULT_WINDOW,
    DriftWindow,
    WindowAccumulator,
    drift_window,
    implied_task,
    output_of,
)
from lambdaserve.kernel.artifacts import ArtifactStore, version_order
from lambdaserve.kernel.capture import CaptureRecord
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.kernel.manifest import REFERENCE_FILE, Task
from lambdaserve.kernel.reference import ReferenceProfile
from lambdaserve.kernel.schema import FeatureSchema
from lambdaserve.kernel.times import as_utc

DEFAULT_MIN_SAMPLES = 100
DEFAULT_PERSISTENCE = (2, 3)
_ALTERED = "masked or hashed by the capture policy: captured values cannot be compared with "
_ALTERED += "the training reference"


class DriftJobError(LambdaserveError):
    """The drift job could not judge a window (the message names the model version and why)."""


class Baseline(NamedTuple):
    """What a model version is compared with, which captured fields are not comparable, and
    the model's task (what of its output is followed; None: what the reference implies)."""

    reference: ReferenceProfile
    schema: FeatureSchema
    altered: Collection[str]
    task: Task | None = None


CaptureSource = Callable[[datetime, datetime], Iterable[CaptureRecord]]
BaselineSource = Callable[[str, str], Baseline]
ReportCallback = Callable[[DriftReport], None]
_Groups = dict[tuple[str, str], VersionGroup | str]


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
        return Baseline(reference, bundle.manifest.features, skipped, bundle.manifest.task)

    return load


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _open_group(
    ident: tuple[str, str],
    end: datetime,
    references: BaselineSource,
    reports: DriftReportStore,
    chunk_rows: int,
) -> VersionGroup | str:
    """A group ready to accumulate, or why this version cannot be judged."""
    name, version = ident
    try:
        key = ReportKey(name, version, end)
    except ValueError:
        return f"captures name an invalid model {name!r} version {version!r}"
    group = VersionGroup(key=key)
    if reports.exists(key):
        return group
    try:  # a plain (reference, schema, altered) tuple is a Baseline of unknown task
        reference, schema, altered, task = Baseline(*references(name, version))
    except LambdaserveError as exc:
        return f"{name} v{version}: {exc}"
    task = task or implied_task(reference)
    if reference_output(reference) != output_of(task):
        return (
            f"{name} v{version}: its {REFERENCE_FILE} profiles no output of a {task} model; "
            "retrain it to give it a drift baseline"
        )
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
        reference.model_copy(update={"features": kept}), chunk_rows=chunk_rows, task=task
    )
    return group


def _gather(
    captures: CaptureSource,
    span: DriftWindow,
    references: BaselineSource,
    reports: DriftReportStore,
    chunk_rows: int,
) -> tuple[_Groups, int]:
    """Each model version's group of the window's captures (or why it cannot be judged), and
    how many captured records fell outside the window."""
    groups: _Groups = {}
    outside = 0
    for record in captures(span.start, span.end):
        if not span.start <= as_utc(record.captured_at) < span.end:
            outside += 1
            continue
        ident = (record.model_name, record.model_version)
        group = groups.get(ident)
        if group is None:
            group = groups[ident] = _open_group(ident, span.end, references, reports, chunk_rows)
        if isinstance(group, VersionGroup) and group.accumulator is not None:
            group.accumulator.add(record)
    return groups, outside


def _to_judge(groups: _Groups) -> list[VersionGroup]:
    """The groups without a report yet, by model name and version order."""
    return sorted(
        (g for g in groups.values() if isinstance(g, VersionGroup) and g.accumulator is not None),
        key=lambda g: (g.key.model_name, version_order(g.key.model_version)),
    )


def _judge_and_store(
    group: VersionGroup,
    report_of: Callable[[VersionGroup], DriftReport],
    reports: DriftReportStore,
    on_stored: ReportCallback | None,
) -> tuple[DriftReport | None, str | None]:
    """Build and store ``group``'s report, then notify: the report if this run wrote it, and
    the failure if one stopped it (or its notification)."""
    label = f"{group.key.model_name} v{group.key.model_version}"
    try:
        report = report_of(group)
        stored = reports.put(report)
    except LambdaserveError as exc:
        return None, f"{label}: {exc}"
    if not stored:
        return None, None
    if on_stored is not None:
        try:
            on_stored(report)
        except LambdaserveError as exc:
            return report, f"{label}: its report was stored, but {exc}"
    return report, None


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
    groups, outside = _gather(captures, span, references, reports, chunk_rows)
    notes = [f"{outside} captured records outside the window were ignored"] if outside else []
    rules = DriftRules(
        min_samples=min_samples, persistence=persistence, share=share, fdr_alpha=fdr_alpha
    )

    def report_of(group: VersionGroup) -> DriftReport:
        return build_report(group, span, scheduled_time, reports, rules, notes, clock())

    written: list[DriftReport] = []
    failures = [g for g in groups.values() if isinstance(g, str)]
    for group in _to_judge(groups):
        report, failure = _judge_and_store(group, report_of, reports, on_stored)
        if report is not None:
            written.append(report)
        if failure is not None:
            failures.append(failure)
    if failures:
        raise DriftJobError(
            f"drift of window {span.start.isoformat()} to {span.end.isoformat()} failed for "
            f"{len(failures)} model version(s) ({'; '.join(failures)}); {len(written)} "
            "report(s) were written"
        )
    return written
