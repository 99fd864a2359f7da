"""The rollout Lambda's adapters: the predict function's alias through the Lambda API, its
CloudWatch alarms as the guard, the durable state in S3; configured by the environment
(``FUNCTION_NAME``, ``ALIAS_NAME``, ``STATE_BUCKET``, ``STATE_PREFIX``, ``GUARD_ALARM_NAMES``),
which the serving stack sets."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lambdaserve.kernel.function_versions import LIVE_ALIAS
from lambdaserve.rollout.lambda_step import RolloutPorts


class RolloutSettings(BaseSettings):
    """Environment of the rollout function: names only, set by the serving stack."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    function_name: str = Field(min_length=1, description="the predict function whose alias moves")
    alias_name: str = Field(default=LIVE_ALIAS, min_length=1)
    state_bucket: str = Field(min_length=3, description="bucket holding the durable state")
    state_prefix: str = Field(default="rollouts/", description="key prefix of the state")
    guard_alarm_names: tuple[str, ...] = Field(
        default=(),
        description="the serving stack's own alarms (alias errors, throttles and p99, API 5XX) "
        "that roll a rollout back besides the challenger's (a JSON list)",
    )


def rollout_ports(settings: RolloutSettings) -> RolloutPorts:
    """The AWS adapters: the Lambda alias, its CloudWatch guard alarms, the state in S3."""
    from lambdaserve.aws.cloudwatch_guard import CloudWatchGuard
    from lambdaserve.aws.lambda_alias import LambdaAlias
    from lambdaserve.aws.s3_rollout_state import S3RolloutState

    return RolloutPorts(
        alias=LambdaAlias(settings.function_name, alias=settings.alias_name),
        guard=CloudWatchGuard(
            settings.function_name,
            alias=settings.alias_name,
            extra_alarm_names=settings.guard_alarm_names,
        ),
        states=S3RolloutState(settings.state_bucket, prefix=settings.state_prefix),
    )
