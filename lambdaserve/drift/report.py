"""The drift report: one per (model, version, window), written once, never changed.

A report carries every number its verdicts used: per-feature ``DriftResult``s, the model
output's (``score``: the prediction score, the regression prediction or the multiclass predicted
class, as the model's ``task`` says), the dataset verdict of the share rule, the features that
survive Benjamini-Hochberg, the "k of the last n windows" persistence rule with the history it
saw, the features skipped (masked or hashed by the capture policy) and the aligned bin counts of
reference and window, so the HTML page can be drawn again from the JSON alone.

Stored as ``drift-reports/<model>/<version>/<window_end:%Y-%m-%dT%H%M>.json`` (+ ``.html``), the
same layout in the local store and in the artifact bucket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from lambdaserve.drift.dataset_verdict import DatasetDrift
from lambdaserve.drift.histograms import (
    FeatureWindows,
    Reference,
    Window,
    aligned_bins,
    output_bins,
)
from lambdaserve.drift.statistics import SCORE_FEATURE, DriftResult, Verdict
from lambdaserve.kernel.manifest import Task
from lambdaserve.kernel.reference import CategoricalReference, NumericReference, ReferenceProfile

REPORT_PREFIX = "drift-reports"
_STAMP = "%Y-%m-%dT%H%M"
#: The manifest's name and version pattern: safe as a path segment and as an S3 key part.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: How the model's output (the ``SCORE_FEATURE`` result) is named on pages and in alarms.
OUTPUT_NAMES: dict[Task, str] = {
    "binary_classification": "prediction score",
    "regression": "prediction",
    "multiclass_classification": "predicted class",
}


@dataclass(frozen=True)
class ReportKey:
    """Where the report of one model version's window lives (its name without the suffix)."""

    model_name: str
    model_version: str
    window_end: datetime

    def __post_init__(self) -> None:
        for part in (self.model_name, self.model_version):
            if not NAME_PATTERN.match(part):
                raise ValueError(f"{part!r} is not a model name or version")
        if self.window_end.tzinfo is None:
            raise ValueError("window_end must be timezone-aware")

    @property
    def stem(self) -> str:
        end = self.window_end.astimezone(UTC)
        return f"{REPORT_PREFIX}/{self.model_name}/{self.model_version}/{end:{_STAMP}}"

    @classmethod
    def parse(cls, name: str) -> Self | None:
        """The key of ``drift-reports/<model>/<version>/<stamp>.json``; None for other names."""
        parts = name.removesuffix(".json").split("/")
        if not name.endswith(".json") or len(parts) != 4 or parts[0] != REPORT_PREFIX:
            return None
        try:
            end = datetime.strptime(parts[3], _STAMP).replace(tzinfo=UTC)
            return cls(parts[1], parts[2], end)
        except ValueError:
            return None


def verdict_outcome(verdict: Verdict) -> bool | None:
    """A verdict as a ``persistent_drift`` history entry (None: too little data to say)."""
    return None if verdict == "insufficient_data" else verdict == "drift"


class BinCounts(BaseModel):
    """Reference and window counts on the same bins, with a label per bin."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    labels: tuple[str, ...]
    reference: tuple[int, ...]
    window: tuple[int, ...]

    @model_validator(mode="after")
    def _same_length(self) -> Self:
        if not len(self.labels) == len(self.reference) == len(self.window):
            raise ValueError("labels, reference and window counts must have the same length")
        return self


class SkippedFeature(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    feature: str
    reason: str


class Persistence(BaseModel):
    """Drifted (dataset verdict) in at least ``k`` of the last ``n`` windows, oldest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(ge=1)
    n: int = Field(ge=1)
    history: tuple[bool | None, ...] = Field(description="None: no report or too little data")
    features: tuple[str, ...] = Field(description="features drifted in k of the last n windows")


class DriftReport(BaseModel):
    """One model version's drift over one window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    report_version: Literal[1] = 1
    model_name: str = Field(pattern=NAME_PATTERN.pattern)
    model_version: str = Field(pattern=NAME_PATTERN.pattern)
    task: Task = Field(
        default="binary_classification", description="what of the model's output `score` judges"
    )
    window_start: AwareDatetime
    window_end: AwareDatetime
    scheduled_time: AwareDatetime
    rows: int = Field(ge=0)
    min_samples: int = Field(ge=1)
    features: tuple[DriftResult, ...]
    score: DriftResult
    dataset: DatasetDrift
    fdr_alpha: float
    fdr_drifted: tuple[str, ...]
    persistent: bool
    persistence: Persistence
    skipped: tuple[SkippedFeature, ...] = ()
    notes: tuple[str, ...] = ()
    bins: dict[str, BinCounts]
    generated_at: AwareDatetime

    @property
    def key(self) -> ReportKey:
        return ReportKey(self.model_name, self.model_version, self.window_end)

    @property
    def outcome(self) -> bool | None:
        """The dataset verdict as a persistence history entry."""
        return verdict_outcome(self.dataset.verdict)

    @property
    def alarm(self) -> bool:
        """Whether to alert: the dataset drifted now, or persistently."""
        return self.dataset.verdict == "drift" or self.persistent

    @property
    def results(self) -> tuple[DriftResult, ...]:
        return (*self.features, self.score)

    def display_name(self, feature: str) -> str:
        """A result's name as shown: the feature's, or the model output's (``OUTPUT_NAMES``)."""
        return OUTPUT_NAMES[self.task] if feature == SCORE_FEATURE else feature


def bin_labels(reference: Reference) -> tuple[str, ...]:
    """A label per bin, in ``aligned_bins`` order."""
    if isinstance(reference, CategoricalReference):
        return (*sorted(reference.counts), "(unseen)", "(missing)")
    edges = [f"{e:.4g}" for e in reference.edges]
    if not edges:
        inner = ["all"]
    else:
        inner = [f"<= {edges[0]}"]
        inner += [f"({a}, {b}]" for a, b in pairwise(edges)]
        inner.append(f"> {edges[-1]}")
    return (*inner, "(missing)") if isinstance(reference, NumericReference) else tuple(inner)


def _output_counts(reference: ReferenceProfile, windows: FeatureWindows) -> BinCounts | None:
    """The model output's counts (``output_bins``), labelled: score bins or predicted classes."""
    output = output_bins(reference, windows)
    if output is None:
        return None
    kind, ref_bins, win_bins = output
    if kind == "predicted_class":
        labels = (*sorted(reference.predicted_classes or {}), "(unseen)")
    else:
        assert reference.score is not None  # output_bins refuses a reference without one
        labels = bin_labels(reference.score)
    return BinCounts(labels=labels, reference=tuple(ref_bins), window=tuple(win_bins))


def aligned_counts(reference: ReferenceProfile, windows: FeatureWindows) -> dict[str, BinCounts]:
    """Every feature's (and the model output's) reference and window counts, labelled."""
    pairs: list[tuple[str, Reference, Window]] = [
        (name, ref, windows.features[name]) for name, ref in reference.features.items()
    ]
    counts = {}
    for name, ref, win in pairs:
        ref_bins, win_bins = aligned_bins(ref, win)
        counts[name] = BinCounts(
            labels=bin_labels(ref), reference=tuple(ref_bins), window=tuple(win_bins)
        )
    output = _output_counts(reference, windows)
    if output is not None:
        counts[SCORE_FEATURE] = output
    return counts


def alarm_message(report: DriftReport) -> tuple[str, str]:
    """Subject (at most 100 characters, as SNS requires) and body of a drift alarm."""
    reasons = []
    if report.dataset.verdict == "drift":
        reasons.append(
            f"dataset drift: {len(report.dataset.drifted_features)} of {report.dataset.tested} "
            f"features drifted (share rule {report.dataset.share:g})"
        )
    if report.persistent:
        k, n = report.persistence.k, report.persistence.n
        reasons.append(f"drifted in at least {k} of the last {n} windows")
    subject = f"lambdaserve drift: {report.model_name} v{report.model_version}"[:100]
    lines = [
        f"{report.model_name} version {report.model_version}, window "
        f"{report.window_start.isoformat()} to {report.window_end.isoformat()} "
        f"({report.rows} predictions)",
        *reasons,
        f"drifted features: {', '.join(report.dataset.drifted_features) or 'none'}",
        f"FDR-controlled drifted features: {', '.join(report.fdr_drifted) or 'none'}",
        f"{report.display_name(SCORE_FEATURE)}: {report.score.message}",
        f"report: {report.key.stem}.html",
    ]
    return subject, "\n".join(lines)
