"""The rollout Lambda's adapters: a model's predict function alias through the Lambda API, its
CloudWatch alarms as the guard, the durable state in S3; configured by the environment
(``MODEL_TARGETS``, ``ALIAS_NAME``, ``STATE_BUCKET``, ``STATE_PREFIX``, ``KEEP_VERSIONS``), which
the serving stack sets. One rollout function serves every model of the stage: ``MODEL_TARGETS``
maps each model to its function and the stack's alarms that guard its alias. With
``KEEP_VERSIONS``, a rollout that ends promoted or rolled back prunes its function's old
published versions down to that many newest (the routed ones always stay)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.kernel.function_versions import LIVE_ALIAS
from lambdaserve.rollout.lambda_step import RolloutPorts
from lambdaserve.rollout.version_pruning import VersionPruning


class ModelTarget(BaseModel):
    """One model's predict function and the serving stack's own alarms on it (alias errors,
    throttles and p99, the API's 5XX on its routes), which roll a rollout back besides the
    challenger's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    function_name: str = Field(min_length=1, description="the predict function whose alias moves")
    guard_alarm_names: tuple[str, ...] = ()


class RolloutSettings(BaseSettings):
    """Environment of the rollout function: names only, set by the serving stack."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    model_targets: dict[str, ModelTarget] = Field(
        min_length=1, description="each model's function and guard alarms (a JSON object)"
    )
    alias_name: str = Field(default=LIVE_ALIAS, min_length=1)
    state_bucket: str = Field(min_length=3, description="bucket holding the durable state")
    state_prefix: str = Field(default="rollouts/", description="key prefix of the state")
    keep_versions: int | None = Field(
        default=None,
        ge=1,
        description="after a rollout is promoted or rolled back, prune its function's published "
        "versions down to this many newest besides the routed ones (unset: no pruning)",
    )


class UnknownModelError(LambdaserveError):
    """The event names a model this stage does not serve."""


def rollout_ports(settings: RolloutSettings, model_name: str) -> RolloutPorts:
    """The AWS adapters of ``model_name``'s rollout: its function's alias, its CloudWatch guard
    alarms, the state in S3."""
    from lambdaserve.aws.cloudwatch_guard import CloudWatchGuard
    from lambdaserve.aws.lambda_alias import LambdaAlias
    from lambdaserve.aws.lambda_publisher import LambdaPublisher
    from lambdaserve.aws.s3_rollout_state import S3RolloutState

    target = settings.model_targets.get(model_name)
    if target is None:
        raise UnknownModelError(
            f"this stage serves no model {model_name!r} "
            f"(models: {', '.join(sorted(settings.model_targets))})"
        )
    return RolloutPorts(
        alias=LambdaAlias(target.function_name, alias=settings.alias_name),
        guard=CloudWatchGuard(
            target.function_name,
            alias=settings.alias_name,
            extra_alarm_names=target.guard_alarm_names,
        ),
        states=S3RolloutState(settings.state_bucket, prefix=settings.state_prefix),
        pruning=None
        if settings.keep_versions is None
        else VersionPruning(
            LambdaPublisher(target.function_name),
            target.function_name,
            settings.keep_versions,
            alias=settings.alias_name,
        ),
    )
