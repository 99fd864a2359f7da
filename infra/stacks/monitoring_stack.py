"""Stateless monitoring: a capture pipeline per model into the capture bucket, the scheduled
drift job (one function, a schedule per model), and the alarms that say when drift is found,
when the job fails, when it stops running and when a model's captures arrive late. Models with
``capture`` off have neither a pipeline nor a schedule; a stage capturing nothing has no drift
job."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import ModelConfig, StageConfig
from infra.constructs.capture_pipeline import CapturePipeline
from infra.constructs.drift_monitor import DriftMonitor

#: The drift handler's EMF metrics (``functions/drift/handler.py``; a test runs it to compare):
#: namespace, and the dimension set every metric carries (Powertools adds ``service``).
METRICS_NAMESPACE = "lambdaserve"
METRICS_SERVICE = "drift"
METRICS_DIMENSIONS = ("model_name", "model_version", "service")
HOUR = Duration.hours(1)

GT = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
LT = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD


def across_models(statistic: str, metric: str) -> str:
    """A Metrics Insights query over every model version's series of a drift metric: an alarm
    on one metric needs its exact dimensions, and model versions are published after deploy
    (alarms cannot use SEARCH; Metrics Insights alarms evaluate the latest 3 hours)."""
    schema = ", ".join([f'"{METRICS_NAMESPACE}"', *METRICS_DIMENSIONS])
    where = f"WHERE service = '{METRICS_SERVICE}'"
    return f"SELECT {statistic}({metric}) FROM SCHEMA({schema}) {where}"  # noqa: S608 - not SQL


class MonitoringStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        capture_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        predict_log_groups: dict[str, logs.ILogGroup],
        alarm_topic: sns.ITopic,
        logs_key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._action = actions.SnsAction(alarm_topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        #: Each capturing model's pipeline (a stage's single model keeps the IDs it had).
        self.captures: dict[str, CapturePipeline] = {}
        for model in config.served_models:
            if model.capture:
                self.captures[model.name] = self._capture(
                    config, model, capture_bucket, predict_log_groups[model.name], logs_key
                )
        if not self.captures:
            return
        self.drift = DriftMonitor(
            self,
            "Drift",
            config=config,
            capture_bucket=capture_bucket,
            artifact_bucket=artifact_bucket,
            alarm_topic=alarm_topic,
            logs_key=logs_key,
        )
        self._alarms(config)
        CfnOutput(self, "DriftFunctionName", value=self.drift.function.function_name)
        for model in config.served_models:
            if model.name in self.drift.schedules:
                CfnOutput(
                    self,
                    f"{model.construct_id}DriftSchedule" if model.prefixed else "DriftScheduleName",
                    value=self.drift.schedules[model.name].ref,
                    description=f"the drift schedule of model {model.name}",
                )
        CfnOutput(self, "DriftDeadLetterQueueUrl", value=self.drift.dead_letters.queue_url)

    def _capture(
        self,
        config: StageConfig,
        model: ModelConfig,
        capture_bucket: s3.IBucket,
        source: logs.ILogGroup,
        logs_key: kms.IKey,
    ) -> CapturePipeline:
        """The model's capture stream, its freshness alarm and its output."""
        capture = CapturePipeline(
            self,
            f"{model.construct_id}Capture" if model.prefixed else "Capture",
            config=config,
            model=model,
            capture_bucket=capture_bucket,
            source=source,
            logs_key=logs_key,
        )
        self._capture_freshness(config, capture)
        CfnOutput(
            self,
            f"{model.construct_id}CaptureStreamName"
            if model.prefixed
            else "CaptureDeliveryStreamName",
            value=capture.delivery_stream_name,
            description=f"the capture stream of model {model.name}",
        )
        return capture

    def _alarms(self, config: StageConfig) -> None:
        self._alarm(
            "DriftDetected",
            cloudwatch.MathExpression(
                expression=across_models("MAX", "DatasetDrift"), period=HOUR, label="drifted"
            ),
            threshold=1,
            comparison=GT,
            description="dataset drift in a judged window of any model version",
        )
        self._alarm(
            "DriftErrors",
            self.drift.function.metric_errors(period=HOUR, statistic="Sum"),
            threshold=1,
            comparison=GT,
            description="drift job runs that failed (retried, then dead-lettered)",
        )
        # No completed run of a model for heartbeat_hours: its schedule stopped or every run
        # failed. Each run emits DriftJobRuns by the model it judged whether or not its window
        # held traffic, so a quiet hour is not mistaken for a stopped job, and one model's
        # stopped schedule is not hidden by the others' runs. One series each: plain alarms.
        for model in config.served_models:
            if model.name in self.drift.schedules:
                self._heartbeat(config, model)
        self._alarm(
            "DriftDeadLetters",
            self.drift.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            comparison=GT,
            description="drift runs the scheduler could not deliver or that failed every retry",
        )

    def _heartbeat(self, config: StageConfig, model: ModelConfig) -> None:
        self._alarm(
            f"DriftHeartbeat{model.construct_id}" if model.prefixed else "DriftHeartbeat",
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="DriftJobRuns",
                dimensions_map={"service": METRICS_SERVICE, "model_name": model.name},
                statistic="Sum",
                period=HOUR,
            ),
            threshold=1,
            comparison=LT,
            periods=config.heartbeat_hours,
            missing=cloudwatch.TreatMissingData.BREACHING,
            description=f"no drift job run of {model.name} completed in {config.heartbeat_hours} h",
        )

    def _capture_freshness(self, config: StageConfig, capture: CapturePipeline) -> None:
        model = capture.model
        lateness = config.drift_lateness_minutes * 60
        self._alarm(
            f"CaptureFreshness{model.construct_id}" if model.prefixed else "CaptureFreshness",
            cloudwatch.Metric(
                namespace="AWS/Firehose",
                metric_name="DeliveryToS3.DataFreshness",
                dimensions_map={"DeliveryStreamName": capture.delivery_stream_name},
                statistic="Maximum",
                period=Duration.minutes(5),
            ),
            threshold=lateness,
            comparison=GT,
            description=f"captures of {model.name} reach S3 later than the drift job waits "
            f"({lateness} s)",
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        description: str,
        periods: int = 1,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            comparison_operator=comparison,
            treat_missing_data=missing,
            alarm_description=f"lambdaserve monitoring: {description}",
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms[construct_id] = alarm
