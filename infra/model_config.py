"""The models a stage serves: one ``ModelConfig`` per model, resolved from the stage's defaults.

A stage with ``models`` (``{"churn": {...}, "fraud": {"runtime": "sklearn"}}``) deploys a
predict function, ``live`` alias, alarms, capture stream and drift schedule per model, behind
``/models/<name>/...`` of the one API. A stage without it serves one model, named by
``model_name`` (or the model in ``model_uri``), on the unprefixed routes, with the resources
(and logical IDs) it has always had. A model setting left out takes the stage's value; a model
setting given, even ``null``, is the model's own.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

#: Bundles are stored as ``models/<name>/<version>/...`` (``lambdaserve.kernel.artifacts``).
MODELS_PREFIX = "models/"
#: ``lambdaserve.kernel.manifest.Manifest.name`` (infra imports no runtime code).
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: A name under ``models`` becomes part of a Lambda function name (letters, digits, hyphens,
#: underscores), an API path segment, a capture partition key and a schedule name: lower-case
#: letters, digits and single hyphens inside.
_DEPLOYED_NAME = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]$|^[a-z]$")
_BUNDLE_KEY = re.compile(r"^s3://[^/]+/(?:.+/)?models/([^/]+)/[^/]+/[^/]+$")
#: Lambda function names are at most 64 characters.
FUNCTION_NAME_LIMIT = 64
#: ``PredictFunction`` names a model's function ``<stage prefix>-predict-<model>``.
PREDICT_SUFFIX = "-predict"


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


class ModelSettings(BaseModel):
    """What one model of ``models`` may set for itself; the rest comes from the stage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runtime: Literal["onnx", "sklearn"] = Field(
        default="onnx", description="which dependency layer the predict function carries"
    )
    dataframe_inputs: bool = Field(
        default=False,
        description="the predict layer carries pandas, for scikit-learn-served bundles of "
        "pipelines fitted on a DataFrame (save_model, MLflow imports) that ONNX does not serve",
    )
    custom_code: CustomCode | None = Field(
        default=None, description="your own model code served with the predict function"
    )
    memory_mb: int = Field(default=1024, ge=128, le=10240)
    timeout_seconds: int = Field(
        default=10, ge=1, le=29, description="API Gateway stops waiting after 29 s"
    )
    reserved_concurrency: int | None = Field(default=50, ge=1)
    model_uri: str | None = Field(default=None, pattern=r"^s3://[a-z0-9.-]{3,63}/.+")
    model_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    alarms: AlarmThresholds = AlarmThresholds()
    capture: bool = Field(
        default=True, description="capture every prediction (and its drift schedule)"
    )
    snap_start: bool = Field(
        default=False,
        description="SnapStart on published versions: each model version's init (bundle "
        "load, warm-up prediction) is snapshotted once and restored on cold starts; pays for "
        "a slow init (a scikit-learn-served bundle), costs a cache charge per active version",
    )


#: The stage fields a model inherits (and may set under ``models``).
INHERITED = tuple(ModelSettings.model_fields)


class ModelConfig(ModelSettings):
    """One served model, every setting resolved, and the names its resources take."""

    name: str = Field(pattern=MODEL_NAME)
    #: Under ``models``: routes ``/models/<name>/...`` and resources of its own; else the stage's
    #: single model on the unprefixed routes.
    prefixed: bool = False
    function_name: str = Field(min_length=1, max_length=FUNCTION_NAME_LIMIT)

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if (self.model_uri is None) != (self.model_sha256 is None):
            raise ValueError("model_uri and model_sha256 go together: set both or neither")
        uri_model = bundle_uri_model(self.model_uri)
        if self.model_uri and uri_model != self.name:
            raise ValueError(
                f"model_uri names model {uri_model!r}, not {self.name!r}: a model's function "
                f"serves its own bundles (models/{self.name}/...)"
            )
        if self.dataframe_inputs and self.runtime != "sklearn":
            raise ValueError("dataframe_inputs needs runtime 'sklearn': ONNX takes no DataFrame")
        if self.custom_code is not None and self.runtime != "sklearn":
            raise ValueError(
                "custom_code needs runtime 'sklearn': a model holding your own classes is served "
                "by scikit-learn, not ONNX Runtime"
            )
        return self

    @property
    def bundle_prefix(self) -> str:
        """The only bundles its function (and the drift job, for it) may read."""
        return f"{MODELS_PREFIX}{self.name}/"

    def capture_stream_name(self, prefix: str) -> str:
        """Its capture stream's name (a stage's single model keeps the one it always had; the
        serving stack's dashboard names it without a reference to the monitoring stack)."""
        return f"{prefix}-capture-{self.name}" if self.prefixed else f"{prefix}-captures"

    @property
    def construct_id(self) -> str:
        """The scope of its resources under ``models`` (``churn-v2`` → ``ModelChurnV2``)."""
        return "Model" + "".join(part.capitalize() for part in self.name.split("-"))


def bundle_uri_model(uri: str | None) -> str | None:
    """The model a bundle URI names (``s3://b/models/<name>/<version>/<file>``)."""
    match = _BUNDLE_KEY.match(uri or "")
    return match[1] if match else None


def deployed_name_problem(name: str, prefix: str) -> str | None:
    """Why ``name`` cannot name a model under ``models`` of a stage whose resources start with
    ``prefix``, or None."""
    if not _DEPLOYED_NAME.match(name):
        return (
            f"model name {name!r} under models must be lower-case letters, digits and single "
            "hyphens, starting with a letter and not ending with a hyphen (it names the model's "
            "function, routes, capture partition and schedule)"
        )
    longest = FUNCTION_NAME_LIMIT - len(f"{prefix}{PREDICT_SUFFIX}-")
    if len(name) > longest:
        return (
            f"model name {name!r} is {len(name)} characters: the function "
            f"{prefix}{PREDICT_SUFFIX}-{name} would pass Lambda's {FUNCTION_NAME_LIMIT}, so "
            f"names of stage {prefix!r} have at most {longest}"
        )
    return None


def resolve_model(
    name: str, defaults: dict[str, object], own: ModelSettings | None, *, prefix: str
) -> ModelConfig:
    """The model's settings: ``own`` where it set them (``model_fields_set``), else the
    stage's; a problem is a ``ValueError`` naming the model."""
    settings = dict(defaults)
    if own is not None:
        settings |= {field: getattr(own, field) for field in own.model_fields_set}
    prefixed = own is not None
    function_name = f"{prefix}{PREDICT_SUFFIX}" + (f"-{name}" if prefixed else "")
    try:
        return ModelConfig.model_validate(
            {**settings, "name": name, "prefixed": prefixed, "function_name": function_name}
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'model'}: {err['msg']}"
            for err in exc.errors(include_input=False)
        )
        where = f"models.{name}" if prefixed else f"model {name!r}"
        raise ValueError(f"{where}: {problems}") from exc
