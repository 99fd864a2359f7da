"""Request models generated from the manifest's feature schema.

Strict JSON types (no numbers in strings), finite numbers only, every column present (``null`` only
where the training data had missing values), unknown fields rejected. Categorical values outside the
training set are accepted and flagged in the response, as the model's encoder ignores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from lambdaserve.core.schema import FeatureSchema, FeatureSpec

MAX_CATEGORY_LENGTH = 256


def _annotation(spec: FeatureSpec) -> Any:
    if spec.kind == "categorical":
        base: Any = str
    elif spec.dtype == "bool":
        base = bool | float
    else:
        base = float
    return base | None if spec.nullable else base


def _field(spec: FeatureSpec, index: int) -> tuple[Any, Any]:
    description = (
        f"categorical; training categories: {', '.join(spec.categories[:20])}"
        if spec.kind == "categorical"
        else f"numeric ({spec.dtype}); training range [{spec.minimum}, {spec.maximum}]"
    )
    extra: dict[str, Any] = (
        {"max_length": MAX_CATEGORY_LENGTH} if spec.kind == "categorical" else {}
    )
    return (_annotation(spec), Field(..., alias=spec.name, description=description, **extra))


@dataclass(frozen=True)
class RequestModels:
    features: type[BaseModel]
    predict: type[BaseModel]
    batch: type[BaseModel]


def build_request_models(schema: FeatureSchema, *, max_batch_rows: int) -> RequestModels:
    config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, populate_by_name=False)
    fields = {f"f{i}": _field(spec, i) for i, spec in enumerate(schema.features)}
    features = create_model("Features", __config__=config, **fields)  # type: ignore[call-overload]
    predict = create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid", strict=True),
        features=(features, Field(..., description="one value per feature column")),
    )
    batch = create_model(
        "BatchPredictRequest",
        __config__=ConfigDict(extra="forbid", strict=True),
        instances=(
            list[features],
            Field(
                ...,
                min_length=1,
                max_length=max_batch_rows,
                description=f"1 to {max_batch_rows} rows",
            ),
        ),
    )
    return RequestModels(features=features, predict=predict, batch=batch)
