"""The stage configuration: parsed once from CDK context into a frozen, validated object.

``cdk.json`` holds ``lambdaserve:stages`` (one object per stage); ``-c stage=NAME`` picks one
(default ``dev``). Anything invalid stops synthesis with a message naming the field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

STAGES_CONTEXT_KEY = "lambdaserve:stages"
STAGE_CONTEXT_KEY = "stage"
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)
# (the same days infra/constructs/log_group.py maps to CloudWatch's enum)
#: EventBridge Scheduler's recurring expressions (one-time ``at(...)`` schedules are refused).
_SCHEDULE = r"^(rate\(\s*[1-9]\d*\s+(minute|minutes|hour|hours|day|days)\s*\)|cron\(.+\))$"
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|hour|day)s?\s*\)")
_MINUTES = {"minute": 1, "hour": 60, "day": 1440}
#: ``lambdaserve.kernel.manifest.Manifest.name`` (infra imports no runtime code).
_MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: Bundles are stored as ``models/<name>/<version>/...`` (``lambdaserve.kernel.artifacts``).
MODELS_PREFIX = "models/"
_BUNDLE_KEY = re.compile(r"^s3://[^/]+/(?:.+/)?models/([^/]+)/[^/]+/[^/]+$")
#: Seconds Firehose buffers captures before writing them to S3 (infra/constructs/capture_pipeline).
CAPTURE_BUFFER_SECONDS = 60


class StageConfigError(ValueError):
    """The stage configuration in CDK context is missing or invalid."""


class AlarmThresholds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    errors: int = Field(default=5, ge=1, description="function errors per period")
    throttles: int = Field(default=1, ge=1)
    p99_latency_ms: int = Field(default=1000, ge=10)
    api_5xx: int = Field(default=5, ge=1, description="API Gateway 5XX responses per period")
    period_seconds: int = Field(default=60, ge=10)
    evaluation_periods: int = Field(default=3, ge=1, le=30)
    datapoints_to_alarm: int = Field(default=2, ge=1, le=30)

    @model_validator(mode="after")
    def _datapoints_fit(self) -> AlarmThresholds:
        if self.datapoints_to_alarm > self.evaluation_periods:
            raise ValueError("datapoints_to_alarm cannot exceed evaluation_periods")
        return self


#: A dotted Python type name (``package.module.Class``).
_TYPE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"


class CustomCode(BaseModel):
    """The user's own model code (a transformer class their pipeline holds) and the trust that
    goes with it: the directory's top-level packages join the predict function's asset, and the
    function trusts their types, plus ``trusted_types``, when skops loads a model file. Trust
    comes from here, never from a bundle."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(
        min_length=1, description="directory holding the package(s), relative to cdk.json"
    )
    trusted_types: tuple[Annotated[str, Field(pattern=_TYPE_NAME)], ...] = ()


class TrainingSource(BaseModel):
    """The user's training script directory, used by the training stack in place of ours: it is
    the code channel, its ``requirements.txt`` resolved against our pins."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(
        min_length=1, description="directory holding the script, relative to cdk.json"
    )
    entry_point: str = Field(default="train.py", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*\.py$")


class StageConfig(BaseModel):
    """Everything that differs between stages; nothing else is configurable."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str = Field(pattern=r"^[a-z][a-z0-9-]{1,19}$")
    account: str | None = Field(default=None, pattern=r"^\d{12}$")
    region: str = Field(default="us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    architecture: Literal["arm64", "x86_64"] = "arm64"
    memory_mb: int = Field(default=1024, ge=128, le=10240)
    timeout_seconds: int = Field(
        default=10, ge=1, le=29, description="API Gateway stops waiting after 29 s"
    )
    reserved_concurrency: int | None = Field(default=50, ge=1)
    model_name: str | None = Field(
        default=None,
        pattern=_MODEL_NAME,
        description="the model this stage serves (defaults to the name in model_uri): the "
        "predict and drift functions may read only its bundles, models/<model_name>/, and the "
        "drift job only its reports; unset, they may read every model's bundles under models/",
    )
    model_uri: str | None = Field(default=None, pattern=r"^s3://[a-z0-9.-]{3,63}/.+")
    model_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    runtime: Literal["onnx", "sklearn"] = Field(
        default="onnx", description="which dependency layer the predict function carries"
    )
    dataframe_inputs: bool = Field(
        default=False,
        description="the predict layer carries pandas, for scikit-learn-served bundles of "
        "pipelines fitted on a DataFrame (save_model, MLflow imports) that ONNX does not serve",
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
    alarms: AlarmThresholds = AlarmThresholds()
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
    custom_code: CustomCode | None = Field(
        default=None, description="your own model code served with the predict function"
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
    capture_mask: tuple[str, ...] = Field(
        default=(), description="features captured as null (the drift job skips them)"
    )
    capture_hash: tuple[str, ...] = Field(
        default=(),
        description="salted-hash captured features (salt in Secrets Manager; drift skips them)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> StageConfig:
        if (self.model_uri is None) != (self.model_sha256 is None):
            raise ValueError("model_uri and model_sha256 go together: set both or neither")
        if self.model_uri and self.model_name and self._uri_model() != self.model_name:
            raise ValueError(
                f"model_uri names model {self._uri_model()!r}, not model_name "
                f"{self.model_name!r}: a stage serves one model"
            )
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(f"log_retention_days must be one of {LOG_RETENTION_DAYS}")
        if "*" in self.cors_allowed_origins:
            raise ValueError("cors_allowed_origins cannot contain '*': list the origins")
        if self.dataframe_inputs and self.runtime != "sklearn":
            raise ValueError("dataframe_inputs needs runtime 'sklearn': ONNX takes no DataFrame")
        if self.custom_code is not None and self.runtime != "sklearn":
            raise ValueError(
                "custom_code needs runtime 'sklearn': a model holding your own classes is served "
                "by scikit-learn, not ONNX Runtime"
            )
        if self.auth_mode == "cognito" and not self.cognito_user_pool_arn:
            raise ValueError("auth_mode 'cognito' needs cognito_user_pool_arn (the user pool)")
        if self.auth_mode == "iam" and self.cognito_user_pool_arn:
            raise ValueError("cognito_user_pool_arn is only used with auth_mode 'cognito'")
        self._check_drift()
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

    def _uri_model(self) -> str | None:
        match = _BUNDLE_KEY.match(self.model_uri or "")
        return match[1] if match else None

    @property
    def served_model(self) -> str | None:
        """The one model this stage serves, when the configuration names it."""
        return self.model_name or self._uri_model()

    @property
    def bundle_prefix(self) -> str:
        """The narrowest key prefix of the bundles this stage may read: ``models/<name>/`` for
        a named model, else ``models/`` (every model: the stack does not know which one)."""
        name = self.served_model
        return f"{MODELS_PREFIX}{name}/" if name else MODELS_PREFIX


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
