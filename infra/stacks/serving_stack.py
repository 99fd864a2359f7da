"""Stateless serving: a predict function, ``live`` alias and alarms per model, the one API in
front of them, and the state machine that rolls new versions out on a model's alias
unattended."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.model_dashboard import ModelDashboard
from infra.constructs.predict_api import PredictApi
from infra.constructs.predict_function import (
    LIVE_ALIAS,
    PredictFunction,
    capture_policy_parameter_name,
)
from infra.constructs.rollout_machine import RolloutMachine

__all__ = ["LIVE_ALIAS", "ServingStack", "capture_policy_document"]


def capture_policy_document(config: StageConfig) -> str:
    """The stage's capture policy as ``lambdaserve.kernel.capture.CapturePolicyDocument`` reads
    it (a test checks it): mask and hash names, never the salt."""
    return json.dumps(
        {"enabled": True, "mask": sorted(config.capture_mask), "hash": sorted(config.capture_hash)}
    )


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
        capture_policy = ssm.StringParameter(
            self,
            "CapturePolicy",
            parameter_name=capture_policy_parameter_name(config),
            string_value=capture_policy_document(config),
            description="capture policy every predict version re-reads each minute (lambdaserve)",
        )
        #: One prediction function per model: the stage's single model in the stack itself
        #: (its logical IDs unchanged), each model of ``models`` in a scope of its own.
        self.models: dict[str, PredictFunction] = {
            model.name: PredictFunction(
                Construct(self, model.construct_id) if model.prefixed else self,
                config=config,
                model=model,
                artifact_bucket=artifact_bucket,
                capture_salt=capture_salt,
                capture_policy=capture_policy,
                logs_key=logs_key,
            )
            for model in config.served_models
        }
        predict_api = PredictApi(
            self,
            "PredictApi",
            config=config,
            targets=[(served.model, served.alias) for served in self.models.values()],
            logs_key=logs_key,
        )
        self.api = predict_api.api
        self.alarm_topic = self._alarm_topic(config)
        for name, served in self.models.items():
            served.add_alarms(self.api, self.alarm_topic, predict_api.routes[name])
        self.rollout = RolloutMachine(
            self,
            "Rollout",
            config=config,
            targets={name: served.rollout_target() for name, served in self.models.items()},
            state_bucket=artifact_bucket,
            alarm_topic=self.alarm_topic,
            logs_key=logs_key,
        )
        self._dashboards(config)
        self._outputs()

    def _dashboards(self, config: StageConfig) -> None:
        """A dashboard per model, with its guards and the rollout machine's alarms."""
        for served in self.models.values():
            assert served.alarms is not None
            ModelDashboard(
                served.scope,
                "ModelDashboard",
                config=config,
                model=served.model,
                function=served.function,
                api_5xx=served.alarms.api_5xx,
                alarms=[*served.alarms.alarms, *self.rollout.alarms],
            )

    def _outputs(self) -> None:
        CfnOutput(self, "ApiUrl", value=self.api.url)
        for served in self.models.values():
            CfnOutput(
                served.scope,
                "FunctionName",
                value=served.function.function_name,
                description=f"the predict function of model {served.model.name}",
            )
        CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)
        CfnOutput(
            self, "RolloutStateMachineArn", value=self.rollout.state_machine.state_machine_arn
        )

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
