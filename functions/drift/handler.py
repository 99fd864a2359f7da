"""Lambda entry point of the scheduled drift job: ``functions/drift/handler.py:lambda_handler``.

EventBridge Scheduler invokes it with the target input
``{"time": "<aws.scheduler.scheduled-time>"}``; it runs the same use case as ``lambdaserve drift
run`` (``lambdaserve.drift.scheduled``) with the AWS adapters: captures and reports in
S3, references from the bundles, alarms to SNS, metrics as EMF (``lifecycle.drift_metrics``).
It answers a summary of the window and the reports it wrote; any failure raises (so the
scheduler retries, then dead-letters) with a message that says what went wrong.

Configured by the environment, read once per execution environment (see DriftSettings).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from functools import cache
from typing import Annotated, Any, Self

from aws_lambda_powertools import Logger
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lambdaserve.aws.drift_metrics import EmfDriftMetrics
from lambdaserve.drift.job import DriftJobError, bundle_baselines
from lambdaserve.drift.report import DriftReportStore
from lambdaserve.drift.scheduled import DriftPorts, DriftSchedule, run_scheduled_drift
from lambdaserve.kernel.capture import CapturePolicy, parse_field_names
from lambdaserve.kernel.errors import LambdaserveError

LambdaHandler = Callable[[Any, Any], dict[str, Any]]
FieldNames = Annotated[frozenset[str], NoDecode]


class DriftSettings(BaseSettings):
    """Environment of the drift function: names and ARNs only, set by the monitoring stack."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    capture_bucket: str = Field(min_length=3, description="bucket of captures/dt=.../hour=.../")
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


class DriftEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    time: AwareDatetime


def aws_ports(settings: DriftSettings) -> DriftPorts:
    """The AWS adapters: captures and reports in S3, bundles from the artifact bucket, SNS."""
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
    )


def build_handler(
    settings: DriftSettings | None = None,
    *,
    ports: Callable[[DriftSettings], DriftPorts] = aws_ports,
) -> LambdaHandler:
    """The handler, with its settings and adapters built once (tests pass their own ports);
    its metrics are always EMF on stdout."""
    settings = settings or DriftSettings()
    adapters = replace(ports(settings), metrics=EmfDriftMetrics())
    schedule = DriftSchedule(
        window=timedelta(minutes=settings.window_minutes),
        lateness=timedelta(minutes=settings.lateness_minutes),
        min_samples=settings.min_samples,
        persistence=(settings.persistence_k, settings.persistence_n),
    )
    logger = Logger(service="lambdaserve-drift")

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: Any, context: Any) -> dict[str, Any]:
        try:
            request = DriftEvent.model_validate(event)
        except ValidationError as exc:
            raise DriftJobError(
                'the event must be {"time": "<ISO 8601 time with offset>"}; set the schedule '
                'target input to {"time": "<aws.scheduler.scheduled-time>"}'
            ) from exc
        logger.append_keys(scheduled_time=request.time.isoformat())
        try:
            run = run_scheduled_drift(request.time, adapters, schedule)
        except LambdaserveError as exc:
            logger.error("drift job failed", extra={"reason": str(exc)})
            raise
        summary = run.summary.model_dump(mode="json")
        logger.info("drift job", extra=summary)
        return summary

    return handler


@cache
def _default_handler() -> LambdaHandler:
    return build_handler()


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """The entry point; settings and AWS adapters are built on the first invocation."""
    return _default_handler()(event, context)
