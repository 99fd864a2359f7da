"""The bundle manifest: the contract between training and serving (DESIGN decision 4)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lambdaserve.kernel.schema import FeatureSchema

MANIFEST_FILE = "manifest.json"
REFERENCE_FILE = "reference.json"
SKOPS_FILE = "model.skops"
ONNX_FILE = "model.onnx"

ClassLabel = str | int | bool
#: What a model predicts: one of two classes, one of several, or a number.
Task = Literal["binary_classification", "multiclass_classification", "regression"]
TASKS: tuple[Task, ...] = ("binary_classification", "multiclass_classification", "regression")


def class_key(label: ClassLabel) -> str:
    """A class as a JSON object key (multiclass ``probabilities``): JSON's spelling of the value."""
    if isinstance(label, bool):
        return "true" if label else "false"
    return str(label)


class TargetRange(BaseModel):
    """What a regression model was trained to predict: the observed target's dtype and range."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dtype: Literal["int64", "float64"]
    minimum: float
    maximum: float
    mean: float
    std: float = Field(ge=0.0)


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class OnnxExport(BaseModel):
    """Whether the bundle carries a parity-checked ONNX model, and why not when it does not."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["ok", "parity_failed", "unsupported", "disabled"]
    file: str | None = None
    max_abs_diff: float | None = None
    tolerance: float | None = None
    opset: int | None = None
    reason: str | None = None


class EstimatorInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    params: dict[str, str | int | float | bool | None]


class MetricSummary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    mean: float
    std: float


class Coercion(BaseModel):
    """A change training made to dirty input data, counted so nothing happens silently."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str
    action: str
    count: int = Field(ge=0)
    message: str


class DataInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    fingerprint: str = Field(description="sha256 of the training data files as read")
    rows: int
    train_rows: int
    holdout_rows: int
    positive_rate: float | None = Field(
        default=None, description="binary classification: the positive class's share"
    )
    dropped_columns: tuple[str, ...] = ()
    coercions: tuple[Coercion, ...] = ()


class ModelInput(BaseModel):
    """What the model's ``predict`` takes: our pipelines take an object matrix in schema order
    (``matrix``); a pipeline fitted on a pandas DataFrame (``save_model``) takes a DataFrame with
    the fitted column order and these pandas dtypes (``dataframe``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["matrix", "dataframe"] = "matrix"
    dtypes: dict[str, str] = Field(default_factory=dict)


class ModelSource(BaseModel):
    """Where a bundle's model came from, when lambdaserve did not train it: ``save_model`` in the
    user's own code, their training script, or an MLflow model (URI without credentials)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["save_model", "script", "mlflow"]
    uri: str | None = None
    tracking_uri: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    run_id: str | None = None
    serialization: str | None = None
    library_version: str | None = Field(
        default=None, description="the scikit-learn version the source model was saved with"
    )


class Manifest(BaseModel):
    """Everything serving needs to know about a model, plus the sha256 of every bundle file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    created_at: datetime
    task: Task = "binary_classification"
    target: str
    classes: tuple[ClassLabel, ...] = Field(
        default=(), description="classification: the classes, in the model's output order"
    )
    positive_class: ClassLabel | None = Field(
        default=None, description="binary classification: the class whose probability is served"
    )
    decision_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    target_range: TargetRange | None = Field(
        default=None, description="regression: the observed target's dtype and range"
    )
    features: FeatureSchema
    estimator: EstimatorInfo
    metrics: dict[str, float]
    cv_metrics: dict[str, MetricSummary]
    library_versions: dict[str, str]
    data: DataInfo
    skops_file: str = SKOPS_FILE
    model_input: ModelInput = Field(default_factory=ModelInput)
    custom_types: tuple[str, ...] = Field(
        default=(),
        description="types the model file holds beyond lambdaserve's allow-list: a deployment "
        "must trust each one (its code and --trust), the manifest only declares them",
    )
    source: ModelSource | None = None
    onnx: OnnxExport
    files: dict[str, FileEntry] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _outputs_fit_the_task(self) -> Self:
        keys = [class_key(c) for c in self.classes]
        if len(set(keys)) != len(keys):
            raise ValueError(f"classes {list(self.classes)} collide as JSON keys")
        if self.task == "binary_classification":
            if len(self.classes) != 2 or self.positive_class not in self.classes:
                raise ValueError("binary classification needs two classes and the positive one")
        elif self.task == "multiclass_classification":
            if len(self.classes) < 3 or self.positive_class is not None:
                raise ValueError("multiclass classification needs three classes or more")
        elif self.classes or self.positive_class is not None or self.target_range is None:
            raise ValueError("regression has no classes and needs the target's range")
        return self

    @property
    def is_classifier(self) -> bool:
        return self.task != "regression"

    @property
    def preferred_runtime(self) -> Literal["onnx", "sklearn"]:
        return "onnx" if self.onnx.status == "ok" and self.onnx.file else "sklearn"

    @property
    def negative_class(self) -> ClassLabel:
        """Binary classification: the class that is not the positive one."""
        if self.task != "binary_classification":
            raise ValueError(f"a {self.task} model has no negative class")
        return self.classes[0] if self.classes[1] == self.positive_class else self.classes[1]

    @property
    def binary_classes(self) -> tuple[ClassLabel, ClassLabel]:
        """Binary classification: (negative, positive), the order of the model's two outputs."""
        return (self.negative_class, self.require_positive_class)

    @property
    def require_positive_class(self) -> ClassLabel:
        if self.positive_class is None:
            raise ValueError(f"a {self.task} model has no positive class")
        return self.positive_class
