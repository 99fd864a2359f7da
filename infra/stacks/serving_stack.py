"""Stateless serving: the predict function, the ``live`` alias, the API, its alarms, and the
state machine that rolls new versions out on the alias unattended."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.assets import predict_function_code
from infra.config import StageConfig
from infra.constructs.log_group import stage_log_group
from infra.constructs.predict_alarms import PredictAlarms
from infra.constructs.predict_api import PredictApi
from infra.constructs.python_function import (
    dependency_layer,
    lambda_architecture,
    logs_and_tracing,
)
from infra.constructs.rollout_machine import RolloutMachine

LIVE_ALIAS = "live"
HANDLER = "functions.predict.handler.lambda_handler"
MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_BATCH_ROWS = 5000
LAYER_SETS = {"onnx": ["serving-base", "onnx"], "sklearn": ["serving-base", "sklearn"]}


def layer_sets(config: StageConfig) -> list[str]:
    """The predict layer's requirement sets: the runtime's, plus pandas for dataframe_inputs."""
    return LAYER_SETS[config.runtime] + (["dataframe"] if config.dataframe_inputs else [])


def capture_policy_parameter_name(config: StageConfig) -> str:
    return f"/{config.prefix}/capture-policy"


def capture_policy_document(config: StageConfig) -> str:
    """The stage's capture policy as ``lambdaserve.kernel.capture.CapturePolicyDocument`` reads
    it (a test checks it): mask and hash names, never the salt."""
    return json.dumps(
        {"enabled": True, "mask": sorted(config.capture_mask), "hash": sorted(config.capture_hash)}
    )


#: Where the predict asset holds the stage's custom_code packages, on Lambda.
CUSTOM_CODE_ROOT = "/var/task/custom_code"


def predict_environment(config: StageConfig, salt_secret_arn: str = "") -> dict[str, str]:
    """Exactly the fields ``lambdaserve.serving.settings.ServingSettings`` reads on Lambda (a
    test checks it), plus Powertools' own variables. Not ``CAPTURE_SALT``: a secret never
    travels in the environment; the function reads the stage's capture secret (the salt of
    ``capture_hash`` fields, and what its feedback token key is derived from) from the Secrets
    Manager secret ``CAPTURE_SALT_SECRET`` names, once per execution environment. Nor
    ``CAPTURE_MASK``/``CAPTURE_HASH``: a published version keeps the environment it was
    published with, so the policy lives in the SSM parameter ``CAPTURE_POLICY_PARAMETER``
    names, which every serving version re-reads each minute (a change reaches them all)."""
    environment = {
        "CAPTURE_ENABLED": "true",
        "CAPTURE_POLICY_PARAMETER": capture_policy_parameter_name(config),
        "CAPTURE_SALT_SECRET": salt_secret_arn,
        "MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "MAX_BATCH_ROWS": str(MAX_BATCH_ROWS),
        "BUNDLE_CACHE_DIR": "/tmp/lambdaserve-bundles",  # noqa: S108 - Lambda's only writable dir
        "PREFERRED_RUNTIME": config.runtime,
        "POWERTOOLS_SERVICE_NAME": "lambdaserve-predict",
        "POWERTOOLS_METRICS_NAMESPACE": "lambdaserve",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    if config.model_uri and config.model_sha256:
        environment |= {"MODEL_URI": config.model_uri, "MODEL_SHA256": config.model_sha256}
    if config.custom_code is not None:
        # The stage's own code is in the asset (layers.function_asset.CUSTOM_CODE_DIR); its
        # types and the ones named are what skops may load beyond our allow-list.
        environment["CODE_DIRS"] = CUSTOM_CODE_ROOT
        if config.custom_code.trusted_types:
            environment["TRUSTED_TYPES"] = ",".join(sorted(config.custom_code.trusted_types))
    return environment


class ServingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        artifact_bucket: s3.IBucket,
        capture_salt: secretsmanager.ISecret,
        logs_key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        #: The predict function's log group: its capture lines feed the monitoring stack.
        log_group = stage_log_group(self, "PredictLogs", config, key=logs_key)
        self.log_group: logs.ILogGroup = log_group
        self.function = self._predict_function(config, log_group, artifact_bucket, capture_salt)
        self.alias, bootstrap = self._live_alias()
        self.api = PredictApi(
            self, "PredictApi", config=config, target=self.alias, logs_key=logs_key
        ).api
        self.alarm_topic = self._alarm_topic(config)
        self.alarms = PredictAlarms(
            self,
            "Guards",
            function=self.function,
            alias=self.alias,
            versions={"Bootstrap": bootstrap.attr_version},
            api=self.api,
            topic=self.alarm_topic,
            thresholds=config.alarms,
        )
        self.rollout = RolloutMachine(
            self,
            "Rollout",
            config=config,
            target=self.function,
            alias_name=LIVE_ALIAS,
            state_bucket=artifact_bucket,
            alarm_topic=self.alarm_topic,
            guard_alarms=self.alarms.stack_guards,
            logs_key=logs_key,
        )
        CfnOutput(self, "ApiUrl", value=self.api.url)
        CfnOutput(self, "FunctionName", value=self.function.function_name)
        CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)
        CfnOutput(
            self, "RolloutStateMachineArn", value=self.rollout.state_machine.state_machine_arn
        )

    def _predict_function(
        self,
        config: StageConfig,
        log_group: logs.ILogGroup,
        artifact_bucket: s3.IBucket,
        capture_salt: secretsmanager.ISecret,
    ) -> lambda_.Function:
        role = self._role(log_group, artifact_bucket, config)
        self._grant_capture_settings(role, config, capture_salt)
        layer = dependency_layer(
            self,
            "ServingLayer",
            config=config,
            requirement_sets=layer_sets(config),
            function="predict",
            description=f"{config.runtime} dependencies",
        )
        return lambda_.Function(
            self,
            "Predict",
            function_name=f"{config.prefix}-predict",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_architecture(config),
            handler=HANDLER,
            code=predict_function_code(
                Path(config.custom_code.path) if config.custom_code else None
            ),
            layers=[layer],
            memory_size=config.memory_mb,
            timeout=Duration.seconds(config.timeout_seconds),
            reserved_concurrent_executions=config.reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            role=role,
            environment=predict_environment(config, capture_salt.secret_arn),
            description="lambdaserve prediction API (FastAPI + Mangum); versions pin one bundle",
        )

    def _grant_capture_settings(
        self, role: iam.Role, config: StageConfig, capture_salt: secretsmanager.ISecret
    ) -> None:
        """The capture secret, and the capture policy parameter (created here) every version
        re-reads."""
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"], resources=[capture_salt.secret_arn]
            )
        )
        policy_parameter = ssm.StringParameter(
            self,
            "CapturePolicy",
            parameter_name=capture_policy_parameter_name(config),
            string_value=capture_policy_document(config),
            description="capture policy every predict version re-reads each minute (lambdaserve)",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"], resources=[policy_parameter.parameter_arn]
            )
        )

    def _live_alias(self) -> tuple[lambda_.Alias, lambda_.CfnVersion]:
        """The alias and the bootstrap version it starts on."""
        # The `live` alias is created ONCE and then belongs to the rollout controller.
        # It points at a bootstrap version whose logical ID and properties never change, so
        # CloudFormation never sees a difference on the alias and never updates it: later
        # deploys change $LATEST (code, layers, configuration) but leave the alias's versions and
        # routing weights exactly as the controller last set them. Model versions are published
        # by `lambdaserve publish` (one Lambda version per bundle), not by CloudFormation, and
        # CDK's `current_version` is deliberately not used (its logical ID changes with the code,
        # which would repoint the alias and wipe the weights on every deploy).
        bootstrap = lambda_.CfnVersion(
            self,
            "BootstrapVersion",
            function_name=self.function.function_name,
            description="bootstrap version the live alias starts on; never updated by deploys",
        )
        bootstrap.apply_removal_policy(RemovalPolicy.RETAIN)
        alias = lambda_.Alias(
            self,
            "Live",
            alias_name=LIVE_ALIAS,
            version=lambda_.Version.from_version_attributes(
                self, "Bootstrap", version=bootstrap.attr_version, lambda_=self.function
            ),
            description="owned by the lambdaserve rollout controller after creation",
        )
        return alias, bootstrap

    def _alarm_topic(self, config: StageConfig) -> sns.Topic:
        topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=f"{config.prefix}-alarms",
            master_key=self._alarm_key(),
            enforce_ssl=True,
        )
        # CloudWatch alarms publish as the service, never as a role: allow it, for alarms of this
        # account only (the confused-deputy guard the SNS docs give).
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        if config.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        return topic

    def _alarm_key(self) -> kms.Key:
        """A customer-managed key: CloudWatch alarms can publish to an encrypted topic only when
        the key policy lets CloudWatch use the key, which an AWS-managed key never does."""
        key = kms.Key(
            self,
            "AlarmTopicKey",
            enable_key_rotation=True,
            description="encrypts the lambdaserve alarm topic; CloudWatch may use it to publish",
            removal_policy=RemovalPolicy.RETAIN,
        )
        key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        return key

    def _role(
        self, log_group: logs.ILogGroup, artifact_bucket: s3.IBucket, config: StageConfig
    ) -> iam.Role:
        """Least privilege: its own log group, X-Ray, and reading the bundles of the stage's
        model (``models/<name>/``; every model's, ``models/``, when the configuration does not
        name it: a published version's bundle key is chosen after deploy)."""
        role = iam.Role(
            self,
            "PredictRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="lambdaserve predict function",
        )
        for statement in logs_and_tracing(log_group):
            role.add_to_policy(statement)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[artifact_bucket.arn_for_objects(f"{config.bundle_prefix}*")],
            )
        )
        return role
