"""Response bodies of the prediction API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from lambdaserve.kernel.manifest import ClassLabel, OnnxExport, TargetRange, Task
from lambdaserve.kernel.schema import FeatureSpec
from lambdaserve.serving.feedback_tokens import FEEDBACK_TOKEN_PATTERN


class ModelRef(BaseModel):
    name: str
    version: str


class _PredictionBase(BaseModel):
    prediction_id: str = Field(description="unique, sortable by time (ULID)")
    model: ModelRef
    unseen_categories: list[str] = Field(
        default_factory=list, description="categorical features whose value training never saw"
    )
    feedback_token: str = Field(
        pattern=FEEDBACK_TOKEN_PATTERN,
        description="send it back with this prediction's outcome (POST /feedback)",
    )


class Prediction(_PredictionBase):
    """A binary classifier's answer."""

    probability: float = Field(description="probability of the positive class")
    label: ClassLabel


class MulticlassPrediction(_PredictionBase):
    """A multiclass classifier's answer."""

    label: ClassLabel = Field(description="the most probable class")
    probabilities: dict[str, float] = Field(
        description="every class's probability, keyed by the class (as a JSON string)"
    )


class RegressionPrediction(_PredictionBase):
    """A regression model's answer."""

    prediction: float = Field(description="the predicted value")


class BatchPredictions(BaseModel):
    predictions: list[Prediction]


class MulticlassBatchPredictions(BaseModel):
    predictions: list[MulticlassPrediction]


class RegressionBatchPredictions(BaseModel):
    predictions: list[RegressionPrediction]


#: Per task: the response models of ``POST /predict`` and ``POST /predict/batch``.
PREDICTION_RESPONSES: dict[Task, tuple[type[BaseModel], type[BaseModel]]] = {
    "binary_classification": (Prediction, BatchPredictions),
    "multiclass_classification": (MulticlassPrediction, MulticlassBatchPredictions),
    "regression": (RegressionPrediction, RegressionBatchPredictions),
}


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
    task: Task
    target: str
    classes: tuple[ClassLabel, ...] = Field(description="classification: in output order")
    positive_class: ClassLabel | None = Field(description="binary classification only")
    decision_threshold: float
    target_range: TargetRange | None = Field(description="regression only")
    features: list[FeatureSpec]
    metrics: dict[str, float]
    onnx: OnnxExport
    load_seconds: float


class ErrorBody(BaseModel):
    detail: str | list[dict[str, object]]
