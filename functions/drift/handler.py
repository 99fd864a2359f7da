"""Lambda entry point of the scheduled drift job: ``functions/drift/handler.py:lambda_handler``.

EventBridge Scheduler invokes it with the target input
``{"time": "<aws.scheduler.scheduled-time>"}``; the window is derived from that scheduled time
(``lambdaserve.lifecycle.drift_job``), so a retry judges the same window and writes nothing
twice. Every run that completes emits ``DriftJobRuns`` 1 (namespace ``lambdaserve``, dimension
``service`` only): the heartbeat, whether or not the window held traffic to judge. Per new report
it emits EMF metrics (dimensions ``model_name`` and ``model_version``: ``DriftRuns`` 1,
``DriftedFeatures``, ``DatasetDrift`` 0/1, ``PersistentDrift`` 0/1) and publishes an SNS alarm
when the dataset drifted or drifts persistently. It answers a summary of the window and the
reports it wrote. Any failure raises (so the scheduler retries, then dead-letters) with a message
that says what went wrong.

Configured by the environment, read once per execution environment (see DriftSettings).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Annotated, Any, Protocol, Self

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)
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

from lambdaserve.core.capture import CapturePolicy, parse_field_names
from lambdaserve.core.errors import LambdaserveError
from lambdaserve.core.metric_names import (
    DRIFT_SERVICE,
    MODEL_NAME,
    MODEL_VERSION,
    NAMESPACE,
    DriftMetric,
)
from lambdaserve.lifecycle.drift_job import (
    BaselineSource,
    CaptureSource,
    DriftJobError,
    bundle_baselines,
    drift_window,
    run_drift,
)
from lambdaserve.lifecycle.drift_report import DriftReport, DriftReportStore, alarm_message

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
    model_config = ConfigDict(frozen=True, extra="forbid")

    scheduled_time: AwareDatetime
    window_start: AwareDatetime
    window_end: AwareDatetime
    written: tuple[WrittenReport, ...]
    invalid_capture_lines: int


class AlarmPort(Protocol):
    def publish(self, subject: str, message: str) -> str: ...


@dataclass(frozen=True)
class DriftPorts:
    captures: CaptureSource
    baselines: BaselineSource
    reports: DriftReportStore
    alarms: AlarmPort
    invalid_lines: Callable[[], int] = lambda: 0


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


class EmfDriftMetrics:
    """One EMF document per report, with the report's model name and version as dimensions."""

    def __init__(self) -> None:
        # A provider of our own keeps the metric sets per handler (Powertools keeps them on the
        # class otherwise).
        provider = AmazonCloudWatchEMFProvider(
            namespace=NAMESPACE,
            service=DRIFT_SERVICE,
            metric_set={},
            dimension_set={},
            metadata_set={},
        )
        self.metrics = Metrics(provider=provider)

    def __call__(self, report: DriftReport) -> None:
        self.metrics.add_dimension(name=MODEL_NAME, value=report.model_name)
        self.metrics.add_dimension(name=MODEL_VERSION, value=report.model_version)
        for name, value in (
            (DriftMetric.RUNS, 1),
            (DriftMetric.DRIFTED_FEATURES, len(report.dataset.drifted_features)),
            (DriftMetric.DATASET_DRIFT, int(report.dataset.verdict == "drift")),
            (DriftMetric.PERSISTENT_DRIFT, int(report.persistent)),
        ):
            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        self.metrics.flush_metrics()

    def heartbeat(self, reports: int) -> None:
        """One document per completed run, without model dimensions, so one plain alarm reads it
        (a run over a window without traffic writes no report but is still a run)."""
        self.metrics.add_metric(name=DriftMetric.JOB_RUNS, unit=MetricUnit.Count, value=1)
        self.metrics.add_metric(
            name=DriftMetric.REPORTS_WRITTEN, unit=MetricUnit.Count, value=reports
        )
        self.metrics.flush_metrics()


def _summary(
    event: DriftEvent, settings: DriftSettings, written: list[DriftReport], invalid: int
) -> DriftSummary:
    span = drift_window(
        event.time,
        window=timedelta(minutes=settings.window_minutes),
        lateness=timedelta(minutes=settings.lateness_minutes),
    )
    return DriftSummary(
        scheduled_time=event.time,
        window_start=span.start,
        window_end=span.end,
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
        invalid_capture_lines=invalid,
    )


def build_handler(
    settings: DriftSettings | None = None,
    *,
    ports: Callable[[DriftSettings], DriftPorts] = aws_ports,
) -> LambdaHandler:
    """The handler, with its settings and adapters built once (tests pass their own ports)."""
    settings = settings or DriftSettings()
    adapters = ports(settings)
    logger = Logger(service="lambdaserve-drift")
    metrics = EmfDriftMetrics()

    def notify(report: DriftReport) -> None:
        metrics(report)
        if report.alarm:
            adapters.alarms.publish(*alarm_message(report))

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
            written = run_drift(
                request.time,
                captures=adapters.captures,
                references=adapters.baselines,
                reports=adapters.reports,
                on_stored=notify,
                window=timedelta(minutes=settings.window_minutes),
                lateness=timedelta(minutes=settings.lateness_minutes),
                min_samples=settings.min_samples,
                persistence=(settings.persistence_k, settings.persistence_n),
            )
        except LambdaserveError as exc:
            logger.error("drift job failed", extra={"reason": str(exc)})
            raise
        metrics.heartbeat(len(written))
        summary = _summary(request, settings, written, adapters.invalid_lines()).model_dump(
            mode="json"
        )
        logger.info("drift job", extra=summary)
        return summary

    return handler


@cache
def _default_handler() -> LambdaHandler:
    return build_handler()


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """The entry point; settings and AWS adapters are built on the first invocation."""
    return _default_handler()(event, context)
