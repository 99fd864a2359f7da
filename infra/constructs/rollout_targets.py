"""What the shared rollout function is told about each model: its predict function and the
serving stack's own alarms on its alias, as the ``MODEL_TARGETS`` environment variable."""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_

STATE_PREFIX = "rollouts/"


@dataclass(frozen=True)
class RolloutTarget:
    """One model's predict function and the stack's guards of its alias."""

    function: lambda_.IFunction
    guard_alarms: list[cloudwatch.IAlarm]


def rollout_environment(
    *, targets: dict[str, RolloutTarget], alias_name: str, state_bucket: str
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
    return {
        "MODEL_TARGETS": json.dumps(model_targets),
        "ALIAS_NAME": alias_name,
        "STATE_BUCKET": state_bucket,
        "STATE_PREFIX": STATE_PREFIX,
        "POWERTOOLS_SERVICE_NAME": "lambdaserve-rollout",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
