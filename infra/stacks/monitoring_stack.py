"""Stateless monitoring: the capture pipeline into the capture bucket, the scheduled drift job,
and the alarms that say when drift is found, when the job fails and when it stops running."""

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

from infra.config import StageConfig
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
        predict_log_group: logs.ILogGroup,
        alarm_topic: sns.ITopic,
        logs_key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.capture = CapturePipeline(
            self,
            "Capture",
            config=config,
            capture_bucket=capture_bucket,
            source=predict_log_group,
            logs_key=logs_key,
        )
        self.drift = DriftMonitor(
            self,
            "Drift",
            config=config,
            capture_bucket=capture_bucket,
            artifact_bucket=artifact_bucket,
            alarm_topic=alarm_topic,
            logs_key=logs_key,
        )
        self._action = actions.SnsAction(alarm_topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._alarms(config)
        CfnOutput(self, "DriftFunctionName", value=self.drift.function.function_name)
        CfnOutput(self, "DriftScheduleName", value=self.drift.schedule.ref)
        CfnOutput(self, "DriftDeadLetterQueueUrl", value=self.drift.dead_letters.queue_url)
        CfnOutput(self, "CaptureDeliveryStreamName", value=self.capture.delivery_stream_name)

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
        # No completed run for heartbeat_hours: the schedule stopped or every run failed. Each
        # run emits DriftJobRuns whether or not its window held traffic, so a quiet hour is not
        # mistaken for a stopped job. One series (no model dimensions): a plain metric alarm.
        self._alarm(
            "DriftHeartbeat",
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="DriftJobRuns",
                dimensions_map={"service": METRICS_SERVICE},
                statistic="Sum",
                period=HOUR,
            ),
            threshold=1,
            comparison=LT,
            periods=config.heartbeat_hours,
            missing=cloudwatch.TreatMissingData.BREACHING,
            description=f"no drift job run completed in {config.heartbeat_hours} h",
        )
        self._alarm(
            "DriftDeadLetters",
            self.drift.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            comparison=GT,
            description="drift runs the scheduler could not deliver or that failed every retry",
        )
        lateness = config.drift_lateness_minutes * 60
        self._alarm(
            "CaptureFreshness",
            cloudwatch.Metric(
                namespace="AWS/Firehose",
                metric_name="DeliveryToS3.DataFreshness",
                dimensions_map={"DeliveryStreamName": self.capture.delivery_stream_name},
                statistic="Maximum",
                period=Duration.minutes(5),
            ),
            threshold=lateness,
            comparison=GT,
            description=f"captures reach S3 later than the drift job waits ({lateness} s)",
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
