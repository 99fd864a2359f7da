"""What the shared rollout function is told about each model (its predict function and the
serving stack's own alarms on its alias, as ``MODEL_TARGETS``) and what pruning lets it do."""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

STATE_PREFIX = "rollouts/"


@dataclass(frozen=True)
class RolloutTarget:
    """One model's predict function and the stack's guards of its alias."""

    function: lambda_.IFunction
    guard_alarms: list[cloudwatch.IAlarm]


def rollout_environment(
    *,
    targets: dict[str, RolloutTarget],
    alias_name: str,
    state_bucket: str,
    keep_versions: int | None = None,
) -> dict[str, str]:
    """Exactly the fields ``functions.rollout.handler.RolloutSettings`` reads (a test checks it)
    plus Powertools' own variables."""
    model_targets = {
        name: {
            "function_name": target.function.function_name,
            "guard_alarm_names": [alarm.alarm_name for alarm in target.guard_alarms],
        }
        for name, target in sorted(targets.items())
    }
    environment = {
        "MODEL_TARGETS": json.dumps(model_targets),
        "ALIAS_NAME": alias_name,
        "STATE_BUCKET": state_bucket,
        "STATE_PREFIX": STATE_PREFIX,
        "POWERTOOLS_SERVICE_NAME": "lambdaserve-rollout",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    if keep_versions is not None:
        environment["KEEP_VERSIONS"] = str(keep_versions)
    return environment


def pruning_statements(
    functions: list[lambda_.IFunction], keep_versions: int | None
) -> list[iam.PolicyStatement]:
    """With the stage's keep_versions, a finished rollout deletes the versions its alias no
    longer routes beyond the newest ones (``lambdaserve.rollout.version_pruning``): list the
    function's versions, delete one by its qualified ARN."""
    if keep_versions is None:
        return []
    return [
        iam.PolicyStatement(
            actions=["lambda:ListVersionsByFunction"],
            resources=[function.function_arn for function in functions],
        ),
        iam.PolicyStatement(
            actions=["lambda:DeleteFunction"],
            resources=[f"{function.function_arn}:*" for function in functions],
        ),
    ]
