"""The stage configuration: parsed once from CDK context into a frozen, validated object.

``cdk.json`` holds ``lambdaserve:stages`` (one object per stage); ``-c stage=NAME`` picks one
(default ``dev``). Anything invalid stops synthesis with a message naming the field.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from infra.model_config import (
    INHERITED,
    MODEL_NAME,
    AlarmThresholds,
    CustomCode,
    ModelConfig,
    ModelSettings,
    bundle_uri_model,
    deployed_name_problem,
    resolve_model,
)

__all__ = ["AlarmThresholds", "CustomCode", "ModelConfig", "StageConfig", "StageConfigError"]

STAGES_CONTEXT_KEY = "lambdaserve:stages"
STAGE_CONTEXT_KEY = "stage"
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)
# (the same days infra/constructs/log_group.py maps to CloudWatch's enum)
#: EventBridge Scheduler's recurring expressions (one-time ``at(...)`` schedules are refused).
_SCHEDULE = r"^(rate\(\s*[1-9]\d*\s+(minute|minutes|hour|hours|day|days)\s*\)|cron\(.+\))$"
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|hour|day)s?\s*\)")
_MINUTES = {"minute": 1, "hour": 60, "day": 1440}
#: Seconds Firehose buffers captures before writing them to S3 (infra/constructs/capture_pipeline).
CAPTURE_BUFFER_SECONDS = 60


class StageConfigError(ValueError):
    """The stage configuration in CDK context is missing or invalid."""


class TrainingSource(BaseModel):
    """The user's training script directory, used by the training stack in place of ours: it is
    the code channel, its ``requirements.txt`` resolved against our pins."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(
        min_length=1, description="directory holding the script, relative to cdk.json"
    )
    entry_point: str = Field(default="train.py", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*\.py$")


class StageConfig(ModelSettings):
    """Everything that differs between stages; nothing else is configurable. The fields of
    ``ModelSettings`` (runtime, memory, timeout, concurrency, bundle, alarms, capture) are the
    defaults every model of ``models`` inherits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str = Field(pattern=r"^[a-z][a-z0-9-]{1,19}$")
    account: str | None = Field(default=None, pattern=r"^\d{12}$")
    region: str = Field(default="us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    architecture: Literal["arm64", "x86_64"] = "arm64"
    model_name: str | None = Field(
        default=None,
        pattern=MODEL_NAME,
        description="the one model a stage without models serves (defaults to the name in "
        "model_uri): its function reads only its bundles, models/<model_name>/",
    )
    models: dict[str, ModelSettings] = Field(
        default_factory=dict,
        description="the models this stage serves, by name, each with the settings it does "
        "not inherit from the stage; without it the stage serves the one model_name",
    )
    log_retention_days: int = 30
    capture_retention_days: int = Field(
        default=90,
        ge=7,
        le=3650,
        description="days a capture (features, scores, feedback) is kept before S3 expires it",
    )
    auth_mode: Literal["iam", "cognito"] = "iam"
    cognito_user_pool_arn: str | None = Field(
        default=None, pattern=r"^arn:aws:cognito-idp:[a-z0-9-]+:\d{12}:userpool/.+"
    )
    cors_allowed_origins: tuple[str, ...] = ()
    throttle_rate_limit: float = Field(default=100.0, gt=0)
    throttle_burst_limit: int = Field(default=200, ge=1)
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    waf: bool = True
    training_image_uri: str | None = Field(
        default=None, description="defaults to AWS's scikit-learn image for the region"
    )
    training_instance_type: str = Field(
        default="ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$"
    )
    training_max_runtime_seconds: int = Field(default=3600, ge=60, le=432000)
    training_source: TrainingSource | None = Field(
        default=None, description="your training script in place of the built-in job"
    )
    drift_schedule_expression: str = Field(
        default="rate(1 hour)",
        pattern=_SCHEDULE,
        description="EventBridge Scheduler rate(...) or cron(...) (UTC) of the drift job",
    )
    drift_window_minutes: int = Field(
        default=60, ge=1, le=1440, description="captures judged per run; divides a day"
    )
    drift_lateness_minutes: int = Field(
        default=15, ge=1, le=1440, description="how long a window waits for late captures"
    )
    drift_min_samples: int = Field(default=100, ge=1, description="rows a verdict needs")
    drift_persistence_k: int = Field(default=2, ge=1, description="drifted windows of the last n")
    drift_persistence_n: int = Field(default=3, ge=1)
    heartbeat_hours: int = Field(
        default=2,
        ge=1,
        le=24,
        description="hours without a completed drift run before the heartbeat alarm fires",
    )
    keep_versions: int | None = Field(
        default=5,
        ge=1,
        description="published versions a finished rollout keeps besides those its alias "
        "routes (the newest); older ones are deleted (null: never pruned)",
    )
    capture_mask: tuple[str, ...] = Field(
        default=(), description="features captured as null (the drift job skips them)"
    )
    capture_hash: tuple[str, ...] = Field(
        default=(),
        description="salted-hash captured features (salt in Secrets Manager; drift skips them)",
    )

    _served: tuple[ModelConfig, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _consistent(self) -> StageConfig:
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(f"log_retention_days must be one of {LOG_RETENTION_DAYS}")
        if "*" in self.cors_allowed_origins:
            raise ValueError("cors_allowed_origins cannot contain '*': list the origins")
        if self.auth_mode == "cognito" and not self.cognito_user_pool_arn:
            raise ValueError("auth_mode 'cognito' needs cognito_user_pool_arn (the user pool)")
        if self.auth_mode == "iam" and self.cognito_user_pool_arn:
            raise ValueError("cognito_user_pool_arn is only used with auth_mode 'cognito'")
        self._check_drift()
        self._served = self._resolve_models()
        return self

    def _check_drift(self) -> None:
        if 1440 % self.drift_window_minutes:
            raise ValueError("drift_window_minutes must divide a day (1440 minutes)")
        if self.drift_lateness_minutes * 60 <= CAPTURE_BUFFER_SECONDS:
            raise ValueError(
                f"drift_lateness_minutes must exceed Firehose's {CAPTURE_BUFFER_SECONDS} s buffer"
            )
        if self.drift_persistence_k > self.drift_persistence_n:
            raise ValueError("drift_persistence_k cannot exceed drift_persistence_n")
        for name in (*self.capture_mask, *self.capture_hash):
            if not name.strip() or "," in name:
                raise ValueError(f"capture_mask/capture_hash name feature names, got {name!r}")
        if set(self.capture_mask) & set(self.capture_hash):
            both = ", ".join(sorted(set(self.capture_mask) & set(self.capture_hash)))
            raise ValueError(f"a feature is either masked or hashed, not both: {both}")
        every = self.drift_interval_minutes
        if every is not None and every > self.drift_window_minutes:
            raise ValueError(
                f"drift_schedule_expression runs every {every} min, so windows of "
                f"{self.drift_window_minutes} min (drift_window_minutes) would go unjudged"
            )
        if every is not None and every >= self.heartbeat_hours * 60:
            raise ValueError(
                f"drift_schedule_expression runs every {every} min: heartbeat_hours "
                f"({self.heartbeat_hours}) must be longer, or the heartbeat fires between runs"
            )

    @property
    def drift_interval_minutes(self) -> int | None:
        """Minutes between drift runs of a ``rate(...)`` schedule (None for ``cron(...)``)."""
        match = _RATE.fullmatch(self.drift_schedule_expression.strip())
        return int(match[1]) * _MINUTES[match[2]] if match else None

    @property
    def prefix(self) -> str:
        return stage_prefix(self.stage)

    def _resolve_models(self) -> tuple[ModelConfig, ...]:
        """Every served model, resolved from the stage's defaults; a bad name or setting is a
        ``ValueError`` naming the model."""
        defaults = {field: getattr(self, field) for field in INHERITED}
        if not self.models:
            name = self.model_name or bundle_uri_model(self.model_uri)
            if name is None:
                raise ValueError(
                    "name the model this stage serves: set model_name (or model_uri, or a "
                    "models mapping); it names the model's capture partition, drift schedule "
                    "and rollouts"
                )
            return (resolve_model(name, defaults, None, prefix=self.prefix),)
        if self.model_name or self.model_uri:
            raise ValueError(
                "model_name and model_uri name the one model of a stage without models: with "
                "models, set each model's model_uri under its name"
            )
        for name in self.models:
            problem = deployed_name_problem(name, self.prefix)
            if problem:
                raise ValueError(problem)
        return tuple(
            resolve_model(name, defaults, own, prefix=self.prefix)
            for name, own in sorted(self.models.items())
        )

    @property
    def served_models(self) -> tuple[ModelConfig, ...]:
        """The models this stage deploys, in name order (one for a stage without models)."""
        return self._served


def stage_prefix(stage: str) -> str:
    """What every stack and resource name of the stage starts with."""
    return f"lambdaserve-{stage}"


def load_stage_config(context: dict[str, Any] | Any, stage: str | None = None) -> StageConfig:
    """Pick ``stage`` (or context ``stage``, default ``dev``) from ``lambdaserve:stages``."""
    get = context.try_get_context if hasattr(context, "try_get_context") else context.get
    name = stage or get(STAGE_CONTEXT_KEY) or "dev"
    stages = get(STAGES_CONTEXT_KEY)
    if not isinstance(stages, dict) or name not in stages:
        known = ", ".join(sorted(stages)) if isinstance(stages, dict) else "none"
        raise StageConfigError(
            f"no stage {name!r} in cdk.json context {STAGES_CONTEXT_KEY!r} (stages: {known})"
        )
    try:
        return StageConfig.model_validate({"stage": name, **stages[name]})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'stage'}: {err['msg']}"
            for err in exc.errors(include_input=False)
        )
        raise StageConfigError(f"invalid configuration for stage {name!r}: {problems}") from exc
