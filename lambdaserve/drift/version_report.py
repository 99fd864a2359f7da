"""One model version's drift report of a window: its share of the window's captures
(``VersionGroup``), the rules it is judged by (``DriftRules``) and the report built from them
(``build_report``), with persistence read from the reports of the windows before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lambdaserve.drift.dataset_verdict import dataset_drift, fdr_drifted, persistent_drift
from lambdaserve.drift.report import (
    DriftReport,
    Persistence,
    ReportKey,
    SkippedFeature,
    aligned_counts,
    verdict_outcome,
)
from lambdaserve.drift.report_store import DriftReportStore
from lambdaserve.drift.statistics import compare
from lambdaserve.drift.windows import DriftWindow, WindowAccumulator


@dataclass
class VersionGroup:
    """One model version's share of the window; no accumulator when its report exists."""

    key: ReportKey
    accumulator: WindowAccumulator | None = None
    skipped: list[SkippedFeature] = field(default_factory=list)


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
class DriftRules:
    """The job's settings a report is judged by (``run_drift``'s arguments of the same names)."""

    min_samples: int
    persistence: tuple[int, int]
    share: float
    fdr_alpha: float


def build_report(
    group: VersionGroup,
    span: DriftWindow,
    scheduled_time: datetime,
    reports: DriftReportStore,
    rules: DriftRules,
    notes: Sequence[str],
    generated_at: datetime,
) -> DriftReport:
    """The report of ``group``'s window: its features and output against the reference, the
    dataset verdict, the FDR-controlled features, and persistence over the ``n - 1`` windows
    before (as their stored reports say)."""
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
        task=accumulator.task,
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
