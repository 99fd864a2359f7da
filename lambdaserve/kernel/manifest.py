"""The bundle manifest: the contract between training and serving (DESIGN decision 4)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lambdaserve.kernel.schema import FeatureSchema

MANIFEST_FILE = "manifest.json"
REFERENCE_FILE = "reference.json"
SKOPS_FILE = "model.skops"
ONNX_FILE = "model.onnx"

ClassLabel = str | int | bool


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
    positive_rate: float
    dropped_columns: tuple[str, ...] = ()
    coercions: tuple[Coercion, ...] = ()


class Manifest(BaseModel):
    """Everything serving needs to know about a model, plus the sha256 of every bundle file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    created_at: datetime
    task: Literal["binary_classification"] = "binary_classification"
    target: str
    classes: tuple[ClassLabel, ClassLabel]
    positive_class: ClassLabel
    decision_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    features: FeatureSchema
    estimator: EstimatorInfo
    metrics: dict[str, float]
    cv_metrics: dict[str, MetricSummary]
    library_versions: dict[str, str]
    data: DataInfo
    skops_file: str = SKOPS_FILE
    onnx: OnnxExport
    files: dict[str, FileEntry] = Field(default_factory=dict)

    @property
    def preferred_runtime(self) -> Literal["onnx", "sklearn"]:
        return "onnx" if self.onnx.status == "ok" and self.onnx.file else "sklearn"

    @property
    def negative_class(self) -> ClassLabel:
        return self.classes[0] if self.classes[1] == self.positive_class else self.classes[1]
