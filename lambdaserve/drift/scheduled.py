"""The scheduled drift job as one use case, the same for the drift Lambda and ``drift run``.

One run judges the window a schedule names (``drift_job.run_drift``), of every model or of the
one it names (reading only that model's captures), and for each report it
stores: emits the report's metrics, then publishes an alarm when the dataset drifted or drifts
persistently. A run that completes beats once (the heartbeat an alarm watches, emitted whether or
not the window held traffic); a run that fails raises before it beats, so the heartbeat alarm
sees the missing run. The Lambda passes EMF metrics and an SNS topic; locally nothing is
published and reports are printed instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict

from lambdaserve.drift.job import (
    DEFAULT_MIN_SAMPLES,
    DEFAULT_PERSISTENCE,
    BaselineSource,
    CaptureSource,
    run_drift,
)
from lambdaserve.drift.report import DriftReport, alarm_message
from lambdaserve.drift.report_store import DriftReportStore
from lambdaserve.drift.windows import DEFAULT_LATENESS, DEFAULT_WINDOW, DriftWindow, drift_window
from lambdaserve.kernel.capture import CaptureRecord


class AlarmPort(Protocol):
    """Where drift alarms go (an SNS topic on AWS)."""

    def publish(self, subject: str, message: str) -> str: ...


class DriftMetricsPort(Protocol):
    """Where the job's metrics go (EMF on AWS)."""

    def report(self, report: DriftReport) -> None:
        """The metrics of one stored report."""
        ...

    def heartbeat(self, reports: int, model_name: str | None = None) -> None:
        """One completed run, which wrote ``reports`` reports, of ``model_name`` (a run that
        names its model) or of every model."""
        ...


@dataclass(frozen=True)
class DriftPorts:
    """The job's adapters. ``captures`` reads every model's captures; ``model_captures``, when
    given, the source of one model's only (its partition tree), else ``captures`` is filtered."""

    captures: CaptureSource
    baselines: BaselineSource
    reports: DriftReportStore
    alarms: AlarmPort | None = None
    metrics: DriftMetricsPort | None = None
    invalid_lines: Callable[[], int] = lambda: 0
    model_captures: Callable[[str], CaptureSource] | None = None

    def captures_of(self, model_name: str | None) -> CaptureSource:
        """The captures a run judges: every model's (None), or only ``model_name``'s."""
        if model_name is None:
            return self.captures
        source = self.captures if self.model_captures is None else self.model_captures(model_name)

        def of_model(start: datetime, end: datetime) -> Iterator[CaptureRecord]:
            return (r for r in source(start, end) if r.model_name == model_name)

        return of_model


@dataclass(frozen=True)
class DriftSchedule:
    """How windows are cut and judged (the drift function's settings, or ``drift run``'s)."""

    window: timedelta = DEFAULT_WINDOW
    lateness: timedelta = DEFAULT_LATENESS
    min_samples: int = DEFAULT_MIN_SAMPLES
    persistence: tuple[int, int] = DEFAULT_PERSISTENCE

    def window_of(self, scheduled: datetime) -> DriftWindow:
        return drift_window(scheduled, window=self.window, lateness=self.lateness)


class WrittenReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_name: str
    model_version: str
    rows: int
    dataset_verdict: str
    drifted_features: tuple[str, ...]
    persistent: bool
    alarm: bool


class DriftSummary(BaseModel):
    """What a run answers: its window and the reports it wrote."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scheduled_time: AwareDatetime
    model_name: str | None = None  # the one model judged (None: every model)
    window_start: AwareDatetime
    window_end: AwareDatetime
    written: tuple[WrittenReport, ...]
    invalid_capture_lines: int


@dataclass(frozen=True)
class DriftRun:
    window: DriftWindow
    written: list[DriftReport]
    summary: DriftSummary


def run_scheduled_drift(
    scheduled: datetime,
    ports: DriftPorts,
    schedule: DriftSchedule = DriftSchedule(),
    *,
    model_name: str | None = None,
) -> DriftRun:
    """Judge the window of ``scheduled`` for every model, or only ``model_name`` (its captures
    alone are read); store, measure and (when it drifted) alarm on each new report; beat once
    the run completed (features never compared, those the capture policy masks or hashes, come
    with ``ports.baselines``)."""

    def notify(report: DriftReport) -> None:
        if ports.metrics is not None:
            ports.metrics.report(report)
        if report.alarm and ports.alarms is not None:
            ports.alarms.publish(*alarm_message(report))

    window = schedule.window_of(scheduled)
    written = run_drift(
        scheduled,
        captures=ports.captures_of(model_name),
        references=ports.baselines,
        reports=ports.reports,
        on_stored=notify,
        window=schedule.window,
        lateness=schedule.lateness,
        min_samples=schedule.min_samples,
        persistence=schedule.persistence,
    )
    if ports.metrics is not None:
        ports.metrics.heartbeat(len(written), model_name)
    summary = DriftSummary(
        scheduled_time=scheduled,
        model_name=model_name,
        window_start=window.start,
        window_end=window.end,
        written=tuple(
            WrittenReport(
                model_name=r.model_name,
                model_version=r.model_version,
                rows=r.rows,
                dataset_verdict=r.dataset.verdict,
                drifted_features=r.dataset.drifted_features,
                persistent=r.persistent,
                alarm=r.alarm,
            )
            for r in written
        ),
        invalid_capture_lines=ports.invalid_lines(),
    )
    return DriftRun(window, written, summary)
