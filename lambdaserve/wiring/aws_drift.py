"""The drift Lambda's adapters and schedule, configured by the environment the monitoring stack
sets (names and ARNs only; see DriftSettings)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lambdaserve.aws.drift_metrics import EmfDriftMetrics
from lambdaserve.drift.job import bundle_baselines
from lambdaserve.drift.report_store import DriftReportStore
from lambdaserve.drift.scheduled import DriftPorts, DriftSchedule
from lambdaserve.kernel.capture import CapturePolicy, parse_field_names

FieldNames = Annotated[frozenset[str], NoDecode]


class DriftSettings(BaseSettings):
    """Environment of the drift function: names and ARNs only, set by the monitoring stack."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    capture_bucket: str = Field(
        min_length=3, description="bucket of captures/model=.../dt=.../hour=.../"
    )
    artifact_bucket: str = Field(
        min_length=3, description="bundles (references) and drift-reports/"
    )
    alarm_topic_arn: str = Field(pattern=r"^arn:aws[a-z-]*:sns:", description="drift alarms")
    window_minutes: int = Field(default=60, ge=1, le=1440)
    lateness_minutes: int = Field(default=15, ge=0)
    min_samples: int = Field(default=100, ge=1)
    persistence_k: int = Field(default=2, ge=1)
    persistence_n: int = Field(default=3, ge=1)
    capture_mask: FieldNames = Field(
        default=frozenset(), description="the predict function's CAPTURE_MASK: never compared"
    )
    capture_hash: FieldNames = Field(
        default=frozenset(), description="the predict function's CAPTURE_HASH: never compared"
    )

    _field_names = field_validator("capture_mask", "capture_hash", mode="before")(parse_field_names)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if 1440 % self.window_minutes:
            raise ValueError(f"WINDOW_MINUTES must divide a day (1440), got {self.window_minutes}")
        if self.persistence_k > self.persistence_n:
            raise ValueError("PERSISTENCE_K cannot exceed PERSISTENCE_N")
        return self

    @property
    def altered_fields(self) -> frozenset[str]:
        """Fields the predict function's capture policy masks or hashes: never compared."""
        return CapturePolicy(mask=self.capture_mask, hash=self.capture_hash).altered


def drift_ports(settings: DriftSettings) -> DriftPorts:
    """The AWS adapters: captures (every model's, or one model's partitions) and reports in S3,
    bundles from the artifact bucket, SNS, metrics as EMF on stdout."""
    from lambdaserve.aws.s3_artifact_store import S3ArtifactStore
    from lambdaserve.aws.s3_drift_io import S3CaptureReader, S3ReportFiles, SnsTopic

    reader = S3CaptureReader(settings.capture_bucket)
    return DriftPorts(
        captures=reader,
        baselines=bundle_baselines(
            S3ArtifactStore(settings.artifact_bucket), settings.altered_fields
        ),
        reports=DriftReportStore(S3ReportFiles(settings.artifact_bucket)),
        alarms=SnsTopic(settings.alarm_topic_arn),
        invalid_lines=lambda: reader.invalid_lines,
        metrics=EmfDriftMetrics(),
        model_captures=reader.of_model,
    )


def drift_schedule(settings: DriftSettings) -> DriftSchedule:
    return DriftSchedule(
        window=timedelta(minutes=settings.window_minutes),
        lateness=timedelta(minutes=settings.lateness_minutes),
        min_samples=settings.min_samples,
        persistence=(settings.persistence_k, settings.persistence_n),
    )
