"""Unattended rollouts: a Step Functions loop that runs the rollout controller's step in a Lambda.

``Step`` invokes the rollout function (``functions/rollout/handler.py``: one controller tick on
the durable state in S3) → ``Finished?``: when the step says finished, ``Outcome`` ends the
execution (promoted: success; rolled back, aborted or an error: failure with the step's reason
as the cause); otherwise ``Wait`` the seconds the step asked for and step again. An A/B split on
hold is not finished: its guards keep being evaluated until ``lambdaserve ab stop`` ends it. A
step that failed for now (``RetryableStepError``: throttling, a 5xx, a lost race) is retried
with backoff. Alarms on failed, timed-out and aborted executions notify the alarm topic. Start an
execution with ``{"model_name": "<model>"}`` after ``lambdaserve rollout start``: one machine and
one rollout function serve every model of the stage, each rollout moving its own model's alias
(``MODEL_TARGETS`` maps a model to its function and guard alarms).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.assets import rollout_function_code
from infra.config import StageConfig
from infra.constructs.log_group import stage_log_group
from infra.constructs.python_function import (
    dependency_layer,
    lambda_architecture,
    logs_and_tracing,
)
from infra.constructs.rollout_targets import (
    STATE_PREFIX,
    RolloutTarget,
    pruning_statements,
    rollout_environment,
)
from infra.constructs.state_machine_role import state_machine_role

HANDLER = "functions.rollout.handler.lambda_handler"
#: A standard workflow may run a year; a rollout that outlives this (an A/B split held longer)
#: times out, which alarms, and resumes in a new execution (its state is durable) or from
#: ``lambdaserve rollout resume``.
MAX_DURATION = Duration.days(7)
#: The error name of functions.rollout.handler.RetryableStepError.
RETRYABLE_STEP_ERROR = "RetryableStepError"
#: One tick at a time per execution (one rollout per alias), and reserved: the guard that rolls
#: a bad challenger back is never starved by a surge elsewhere in the account when it matters.
RESERVED_CONCURRENCY = 2
#: Step Functions' execution metrics alarmed on: any one of them means nobody guards the split.
EXECUTION_ALARMS = {
    "ExecutionsFailed": "rollout executions that failed (rolled back, aborted or a step error)",
    "ExecutionsTimedOut": "rollout executions that ran out of time",
    "ExecutionsAborted": "rollout executions stopped by hand",
}


class RolloutMachine(Construct):
    """The rollout function (least privilege on the models' functions' aliases, their alarms
    and the rollout state) and the state machine that steps it until a rollout ends."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        targets: dict[str, RolloutTarget],
        state_bucket: s3.IBucket,
        alarm_topic: sns.ITopic,
        logs_key: kms.IKey,
        alias_name: str = "live",
    ) -> None:
        super().__init__(scope, construct_id)
        self._logs_key = logs_key
        self._keep_versions = config.keep_versions
        self.function = self._function(config, targets, alias_name, state_bucket)
        self.state_machine = self._state_machine(config)
        self.alarms = self._execution_alarms(alarm_topic)

    def _function(
        self,
        config: StageConfig,
        targets: dict[str, RolloutTarget],
        alias_name: str,
        state_bucket: s3.IBucket,
    ) -> lambda_.Function:
        log_group = stage_log_group(self, "FunctionLogs", config, key=self._logs_key)
        layer = dependency_layer(
            self,
            "Layer",
            config=config,
            requirement_sets=["serving-base"],
            function="rollout",
            description="rollout dependencies",
        )
        return lambda_.Function(
            self,
            "Function",
            function_name=f"{config.prefix}-rollout",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_architecture(config),
            handler=HANDLER,
            code=rollout_function_code(),
            layers=[layer],
            memory_size=256,
            timeout=Duration.seconds(60),
            reserved_concurrent_executions=RESERVED_CONCURRENCY,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            role=self._role(
                log_group, [target.function for target in targets.values()], state_bucket
            ),
            environment=rollout_environment(
                targets=targets,
                alias_name=alias_name,
                state_bucket=state_bucket.bucket_name,
                keep_versions=config.keep_versions,
            ),
            description="lambdaserve rollout step: one controller tick on a model's live alias",
        )

    def _state_machine(self, config: StageConfig) -> sfn.StateMachine:
        machine_name = f"{config.prefix}-rollout"
        return sfn.StateMachine(
            self,
            "Machine",
            state_machine_name=machine_name,
            role=state_machine_role(
                self,
                "MachineRole",
                state_machine_name=machine_name,
                description="lambdaserve rollout state machine: step the rollout function",
            ),
            definition_body=sfn.DefinitionBody.from_chainable(self._definition()),
            timeout=MAX_DURATION,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=stage_log_group(self, "MachineLogs", config, key=self._logs_key),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
        )

    def _execution_alarms(self, topic: sns.ITopic) -> list[cloudwatch.Alarm]:
        action = actions.SnsAction(topic)
        alarms = []
        for metric_name, what in EXECUTION_ALARMS.items():
            alarm = cloudwatch.Alarm(
                self,
                metric_name,
                metric=self.state_machine.metric(
                    metric_name, period=Duration.minutes(1), statistic="Sum"
                ),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=f"{what}: the split may be left without its guard; see "
                "`lambdaserve rollout status`",
            )
            alarm.add_alarm_action(action)
            alarms.append(alarm)
        return alarms

    def _definition(self) -> sfn.IChainable:
        step = tasks.LambdaInvoke(
            self,
            "Step",
            lambda_function=self.function,
            payload=sfn.TaskInput.from_object(
                {"model_name": sfn.JsonPath.string_at("$.model_name")}
            ),
            payload_response_only=True,
            retry_on_service_exceptions=True,
        )
        step.add_retry(
            errors=["Lambda.TooManyRequestsException"],
            interval=Duration.seconds(5),
            max_attempts=6,
            backoff_rate=2,
        )
        # CloudWatch throttling, an S3 500, a lost If-Match: the step changed nothing durable,
        # so try again, for up to ~10 minutes, before the execution fails (and alarms).
        step.add_retry(
            errors=[RETRYABLE_STEP_ERROR],
            interval=Duration.seconds(10),
            max_attempts=6,
            backoff_rate=2,
            max_delay=Duration.minutes(5),
            jitter_strategy=sfn.JitterType.FULL,
        )
        step.add_catch(
            sfn.Fail(
                self,
                "StepCrashed",
                error="RolloutStepCrashed",
                cause="the rollout function failed to run; see its CloudWatch logs",
            ),
            result_path="$.error",
        )

        def failed(state_id: str, error: str) -> sfn.Fail:
            return sfn.Fail(self, state_id, error=error, cause_path="$.reason")

        outcome = (
            sfn.Choice(self, "Outcome")
            .when(
                sfn.Condition.string_equals("$.status", "promoted"), sfn.Succeed(self, "Promoted")
            )
            .when(
                sfn.Condition.string_equals("$.status", "rolled_back"),
                failed("RolledBack", "RolledBack"),
            )
            .when(sfn.Condition.string_equals("$.status", "aborted"), failed("Aborted", "Aborted"))
            .otherwise(failed("StepFailed", "RolloutStepFailed"))
        )
        wait = sfn.Wait(self, "Wait", time=sfn.WaitTime.seconds_path("$.wait_seconds"))
        return step.next(
            sfn.Choice(self, "Finished?")
            .when(sfn.Condition.boolean_equals("$.finished", True), outcome)
            .otherwise(wait.next(step))
        )

    def _role(
        self,
        log_group: logs.ILogGroup,
        functions: list[lambda_.IFunction],
        state_bucket: s3.IBucket,
    ) -> iam.Role:
        """Exactly what one tick calls: the alias of a model's function, the challenger's guard
        alarms, invocation counts, the rollout state, its own logs and X-Ray."""
        guard_alarms = [self._guard_alarms(function) for function in functions]
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="lambdaserve rollout step: route a model's alias under its alarms",
        )
        statements = [
            *logs_and_tracing(log_group),
            # Lambda authorizes alias actions against the function's (unqualified) ARN, so
            # IAM cannot narrow them to one alias; a predict function has only `live`.
            # GetFunctionConfiguration tells a missing alias from a missing function.
            iam.PolicyStatement(
                actions=[
                    "lambda:GetAlias",
                    "lambda:UpdateAlias",
                    "lambda:GetFunctionConfiguration",
                ],
                resources=[function.function_arn for function in functions],
            ),
            *pruning_statements(functions, self._keep_versions),
            # The challenger's alarms are named <function>-v<version>-<signal>
            # (CloudWatchGuard.alarm_prefix), and carry no actions: the controller reads their
            # state. cloudwatch:AlarmActions holds the actions of a PutMetricAlarm request (for
            # every state: CloudWatch user guide, "Using condition keys to limit alarm
            # actions"); it is absent from a request without actions, which is all this
            # statement allows, so the role cannot make an alarm stop instances or notify.
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricAlarm"],
                resources=guard_alarms,
                conditions={"Null": {"cloudwatch:AlarmActions": "true"}},
            ),
            # A finished rollout deletes its challenger's alarms (CloudWatchGuard.release).
            iam.PolicyStatement(actions=["cloudwatch:DeleteAlarms"], resources=guard_alarms),
            # DescribeAlarms returns composite alarms only when granted on "*", and
            # GetMetricStatistics accepts no resource ARN.
            iam.PolicyStatement(
                actions=["cloudwatch:DescribeAlarms", "cloudwatch:GetMetricStatistics"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[state_bucket.arn_for_objects(f"{STATE_PREFIX}*")],
            ),
        ]
        for statement in statements:
            role.add_to_policy(statement)
        return role

    def _guard_alarms(self, function: lambda_.IFunction) -> str:
        """The challenger alarms of ``function``'s rollouts: ``<function>-v<version>-...``."""
        return Stack.of(self).format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{function.function_name}-v*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
