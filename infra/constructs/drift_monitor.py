"""The scheduled drift job: ``functions/drift/handler.py`` on an EventBridge Scheduler schedule.

One function serves every model; each model with capture on has its own schedule, which invokes
the function with ``{"time": "<aws.scheduler.scheduled-time>", "model_name": "<name>"}``, so
every attempt of one run judges the same window of the same model's captures
(``lambdaserve.drift.job``). EventBridge
Scheduler invokes Lambda asynchronously (Lambda developer guide, "Invoke a Lambda function on a
schedule"): its retry policy and dead-letter queue cover invocations it cannot deliver, and the
function's own asynchronous invocation config (retries, then an on-failure destination) covers
runs that fail. Both end in one encrypted, TLS-only queue that an alarm watches.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.assets import drift_function_code
from infra.config import ModelConfig, StageConfig
from infra.constructs.drift_access import REPORTS_PREFIX, artifact_statements, capture_statements
from infra.constructs.log_group import stage_log_group
from infra.constructs.python_function import (
    dependency_layer,
    lambda_architecture,
    logs_and_tracing,
)

HANDLER = "functions.drift.handler.lambda_handler"
#: Scheduler substitutes the run's scheduled time (ISO 8601, UTC) for the placeholder.
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"


def schedule_input(model: str) -> str:
    """What a model's schedule invokes the drift function with."""
    return json.dumps({"time": SCHEDULED_TIME, "model_name": model})


MEMORY_MB = 1024
TIMEOUT = Duration.minutes(10)
SCHEDULER_RETRIES = 3
FUNCTION_RETRIES = 2
#: One run at a time: each judges one closed window, and a run the reservation throttles waits
#: in Lambda's asynchronous queue (retried up to its maximum event age, then dead-lettered).
#: Reserved, the scheduled job is never starved by a surge elsewhere in the account.
RESERVED_CONCURRENCY = 1


def drift_environment(
    config: StageConfig, *, capture_bucket: str, artifact_bucket: str, alarm_topic_arn: str
) -> dict[str, str]:
    """Exactly the fields ``functions.drift.handler.DriftSettings`` reads (a test checks it) plus
    Powertools' own variables."""
    return {
        "CAPTURE_BUCKET": capture_bucket,
        "ARTIFACT_BUCKET": artifact_bucket,
        "ALARM_TOPIC_ARN": alarm_topic_arn,
        "WINDOW_MINUTES": str(config.drift_window_minutes),
        "LATENESS_MINUTES": str(config.drift_lateness_minutes),
        "MIN_SAMPLES": str(config.drift_min_samples),
        "PERSISTENCE_K": str(config.drift_persistence_k),
        "PERSISTENCE_N": str(config.drift_persistence_n),
        # The predict function's capture policy: masked or hashed features are never compared.
        "CAPTURE_MASK": ",".join(config.capture_mask),
        "CAPTURE_HASH": ",".join(config.capture_hash),
        "POWERTOOLS_SERVICE_NAME": "lambdaserve-drift",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def _seconds(window_minutes: int, *, low: int, high: int) -> int:
    """An event older than one window would be judged after the next run: retry within it."""
    return max(low, min(high, window_minutes * 60))


class DriftMonitor(Construct):
    """The drift function (least privilege on captures, bundles, reports and the alarm topic),
    a schedule per model it judges, and the dead-letter queue of runs that could not be
    delivered or failed."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        capture_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        alarm_topic: sns.ITopic,
        logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            queue_name=f"{config.prefix}-drift-dead-letters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        log_group = stage_log_group(self, "FunctionLogs", config, key=logs_key)
        self.role = self._role(config, log_group, capture_bucket, artifact_bucket, alarm_topic)
        self.function = self._function(
            config, log_group, capture_bucket, artifact_bucket, alarm_topic
        )
        self._failed_runs(config)
        scheduler_role = self._scheduler_role()
        #: Each judged model's schedule (a stage's single model keeps the one it had).
        self.schedules: dict[str, scheduler.CfnSchedule] = {
            model.name: self._schedule(config, model, scheduler_role)
            for model in config.served_models
            if model.capture
        }

    def _function(
        self,
        config: StageConfig,
        log_group: logs.ILogGroup,
        capture_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        alarm_topic: sns.ITopic,
    ) -> lambda_.Function:
        layer = dependency_layer(
            self,
            "Layer",
            config=config,
            requirement_sets=["serving-base", "drift"],
            function="drift",
            description="drift dependencies: numpy, scipy",
        )
        return lambda_.Function(
            self,
            "Function",
            function_name=f"{config.prefix}-drift",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_architecture(config),
            handler=HANDLER,
            code=drift_function_code(),
            layers=[layer],
            memory_size=MEMORY_MB,
            timeout=TIMEOUT,
            reserved_concurrent_executions=RESERVED_CONCURRENCY,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            role=self.role,
            environment=drift_environment(
                config,
                capture_bucket=capture_bucket.bucket_name,
                artifact_bucket=artifact_bucket.bucket_name,
                alarm_topic_arn=alarm_topic.topic_arn,
            ),
            description="lambdaserve drift job: one window of captures against each reference",
        )

    def _failed_runs(self, config: StageConfig) -> None:
        """Retry a failed run, then send it to the dead-letter queue."""
        invoke_config = lambda_.CfnEventInvokeConfig(
            self,
            "FailedRuns",
            function_name=self.function.function_name,
            qualifier="$LATEST",
            maximum_retry_attempts=FUNCTION_RETRIES,
            maximum_event_age_in_seconds=_seconds(
                config.drift_window_minutes, low=60, high=6 * 3600
            ),
            destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(
                    destination=self.dead_letters.queue_arn
                )
            ),
        )
        # Lambda checks that the role may send to the destination when the config is created.
        invoke_config.node.add_dependency(self.role)

    def _scheduler_role(self) -> iam.Role:
        stack = Stack.of(self)
        return iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description="lambdaserve drift schedule: invoke the drift function, dead-letter",
            inline_policies={
                "InvokeDrift": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=["lambda:InvokeFunction"],
                            resources=[self.function.function_arn],
                        ),
                        # Scheduler delivers undeliverable runs with this role (Scheduler user
                        # guide, "Configuring a schedule's dead-letter queue").
                        iam.PolicyStatement(
                            actions=["sqs:SendMessage"], resources=[self.dead_letters.queue_arn]
                        ),
                    ]
                )
            },
        )

    def _schedule(
        self, config: StageConfig, model: ModelConfig, role: iam.IRole
    ) -> scheduler.CfnSchedule:
        return scheduler.CfnSchedule(
            self,
            f"{model.construct_id}Schedule" if model.prefixed else "Schedule",
            name=f"{config.prefix}-drift" + (f"-{model.name}" if model.prefixed else ""),
            description=f"lambdaserve drift job: judge the last closed window of {model.name}",
            schedule_expression=config.drift_schedule_expression,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.function.function_arn,
                role_arn=role.role_arn,
                input=schedule_input(model.name),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=SCHEDULER_RETRIES,
                    maximum_event_age_in_seconds=_seconds(
                        config.drift_window_minutes, low=60, high=86400
                    ),
                ),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                    arn=self.dead_letters.queue_arn
                ),
            ),
        )

    def _role(
        self,
        config: StageConfig,
        log_group: logs.ILogGroup,
        capture_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        alarm_topic: sns.ITopic,
    ) -> iam.Role:
        """Exactly what one run calls: read captures and the stage's models' bundles, read,
        list and create their reports, publish alarms, its own logs and X-Ray, and dead-letter
        a failed run. Bundles and reports are the served models' only (``models/<name>/``,
        ``drift-reports/<name>/``)."""
        judged = [model for model in config.served_models if model.capture]
        bundles = [model.bundle_prefix for model in judged]
        reports = [f"{REPORTS_PREFIX}{model.name}/" for model in judged]
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="lambdaserve drift job: read captures and bundles, write drift reports",
        )
        statements = [
            *logs_and_tracing(log_group),
            *capture_statements(capture_bucket, [model.name for model in judged]),
            *artifact_statements(artifact_bucket, bundles=bundles, reports=reports),
            # The asynchronous invocation's on-failure destination sends with the function's role.
            iam.PolicyStatement(
                actions=["sqs:SendMessage"], resources=[self.dead_letters.queue_arn]
            ),
        ]
        for statement in statements:
            role.add_to_policy(statement)
        # Publish, and use the topic's customer-managed key: without kms:GenerateDataKey* every
        # alarm of an encrypted topic is refused (the grant covers the key too).
        alarm_topic.grant_publish(role)
        if capture_bucket.encryption_key is not None:
            capture_bucket.encryption_key.grant_decrypt(role)  # captures are SSE-KMS
        return role
