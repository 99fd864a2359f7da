"""Response bodies of the prediction API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from lambdaserve.kernel.manifest import ClassLabel, OnnxExport
from lambdaserve.kernel.schema import FeatureSpec
from lambdaserve.serving.feedback_tokens import FEEDBACK_TOKEN_PATTERN


class ModelRef(BaseModel):
    name: str
    version: str


class Prediction(BaseModel):
    prediction_id: str = Field(description="unique, sortable by time (ULID)")
    model: ModelRef
    probability: float = Field(description="probability of the positive class")
    label: ClassLabel
    unseen_categories: list[str] = Field(
        default_factory=list, description="categorical features whose value training never saw"
    )
    feedback_token: str = Field(
        pattern=FEEDBACK_TOKEN_PATTERN,
        description="send it back with this prediction's outcome (POST /feedback)",
    )


class BatchPredictions(BaseModel):
    predictions: list[Prediction]


class FeedbackAccepted(BaseModel):
    accepted: int = Field(description="feedback records stored")
    model: str = Field(description="the model name they were stored for")


class Health(BaseModel):
    status: str
    model: ModelRef | None = None
    runtime: str | None = None
    detail: str | None = None


class ModelDescription(BaseModel):
    name: str
    version: str
    digest: str = Field(description="sha256 of manifest.json (MODEL_SHA256)")
    runtime: str
    created_at: datetime
    target: str
    classes: tuple[ClassLabel, ClassLabel]
    positive_class: ClassLabel
    decision_threshold: float
    features: list[FeatureSpec]
    metrics: dict[str, float]
    onnx: OnnxExport
    load_seconds: float


class ErrorBody(BaseModel):
    detail: str | list[dict[str, object]]
