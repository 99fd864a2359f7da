"""A CloudWatch dashboard per model: the traffic split as it really happened, latency and errors
per executed version, the guard's signals with its thresholds drawn, the alarms' states,
capture freshness and the drift job's verdicts and heartbeat.

Versions are published after deploy, so per-version graphs are ``SEARCH`` expressions over the
dimensions Lambda (``ExecutedVersion``) and our EMF metrics (``model_version``) carry, which
dashboards (unlike alarms) may use. Our metric names are those of
``lambdaserve.kernel.metric_names`` (infra imports no runtime code; ``tests/infra`` checks every
name a dashboard reads against what some function emits).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.config import AlarmThresholds, ModelConfig, StageConfig

NAMESPACE = "lambdaserve"
PERIOD = Duration.minutes(1)
_OURS = "{lambdaserve,model_name,model_version,service}"
_LAMBDA_BY_VERSION = "{AWS/Lambda,ExecutedVersion,FunctionName,Resource}"


class ModelDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        model: ModelConfig,
        function: lambda_.IFunction,
        api_5xx: cloudwatch.IMetric,
        alarms: list[cloudwatch.IAlarm],
    ) -> None:
        super().__init__(scope, construct_id)
        self._function = function.function_name
        self._model = model.name
        thresholds = model.alarms
        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{config.prefix}-{model.name}".replace(".", "-"),
            default_interval=Duration.hours(3),
        )
        dashboard.add_widgets(*self._traffic(thresholds, api_5xx))
        dashboard.add_widgets(*self._answers(alarms))
        dashboard.add_widgets(*self._monitoring(config, model))
        self.dashboard = dashboard

    def _traffic(
        self, thresholds: AlarmThresholds, api_5xx: cloudwatch.IMetric
    ) -> list[cloudwatch.IWidget]:
        return [
            self._graph(
                "Requests per executed version (the split)",
                self._per_version("Invocations", "Sum"),
            ),
            self._graph(
                "Duration per executed version (p50, p99)",
                self._per_version("Duration", "p50"),
                self._per_version("Duration", "p99"),
                annotation=(thresholds.p99_latency_ms, "p99 alarm"),
            ),
            self._graph(
                "Errors per executed version, API 5XX of its routes",
                self._per_version("Errors", "Sum"),
                api_5xx,
                annotation=(thresholds.errors, "errors alarm"),
            ),
        ]

    def _answers(self, alarms: list[cloudwatch.IAlarm]) -> list[cloudwatch.IWidget]:
        return [
            self._graph(
                "Invalid input (4XX) and 5XX answers per model version",
                self._ours("ClientErrors", "Sum"),
                self._ours("ServerErrors", "Sum"),
                self._ours("PredictionRequests", "Sum"),
            ),
            self._graph("Mean output per model version", self._ours("MeanScore", "Average")),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms, width=8, height=6),
        ]

    def _monitoring(self, config: StageConfig, model: ModelConfig) -> list[cloudwatch.IWidget]:
        return [
            self._graph(
                "Capture freshness (s)",
                cloudwatch.Metric(
                    namespace="AWS/Firehose",
                    metric_name="DeliveryToS3.DataFreshness",
                    dimensions_map={"DeliveryStreamName": model.capture_stream_name(config.prefix)},
                    statistic="Maximum",
                    period=Duration.minutes(5),
                ),
                annotation=(config.drift_lateness_minutes * 60, "the drift job's lateness"),
            ),
            self._graph(
                "Drift per model version (drifted features, dataset verdict)",
                self._ours("DriftedFeatures", "Maximum", service="drift"),
                self._ours("DatasetDrift", "Maximum", service="drift"),
            ),
            self._graph(
                "Drift job heartbeat (completed runs)",
                cloudwatch.Metric(
                    namespace=NAMESPACE,
                    metric_name="DriftJobRuns",
                    dimensions_map={"service": "drift", "model_name": model.name},
                    statistic="Sum",
                    period=Duration.hours(1),
                ),
                annotation=(1, "fewer for heartbeat_hours: alarm"),
            ),
        ]

    def _per_version(self, metric: str, statistic: str) -> cloudwatch.MathExpression:
        search = (
            f'SEARCH(\'{_LAMBDA_BY_VERSION} MetricName="{metric}" '
            f"FunctionName=\"{self._function}\"', '{statistic}', {PERIOD.to_seconds()})"
        )
        return cloudwatch.MathExpression(
            expression=search, label=f"{metric} {statistic}", period=PERIOD, using_metrics={}
        )

    def _ours(
        self, metric: str, statistic: str, *, service: str = "predict"
    ) -> cloudwatch.MathExpression:
        search = (
            f'SEARCH(\'{_OURS} MetricName="{metric}" model_name="{self._model}" '
            f"service=\"{service}\"', '{statistic}', {PERIOD.to_seconds()})"
        )
        return cloudwatch.MathExpression(
            expression=search, label=f"{metric} {statistic}", period=PERIOD, using_metrics={}
        )

    @staticmethod
    def _graph(
        title: str, *metrics: cloudwatch.IMetric, annotation: tuple[float, str] | None = None
    ) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(
            title=title,
            left=list(metrics),
            left_annotations=(
                [cloudwatch.HorizontalAnnotation(value=annotation[0], label=annotation[1])]
                if annotation
                else None
            ),
            width=8,
            height=6,
        )
