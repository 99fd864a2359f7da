"""Request validators generated from the manifest's feature schema.

Strict JSON types (no numbers in strings), finite numbers in float32 range only, every column
present (``null`` only where the training data had missing values), unknown fields rejected.
Categorical values outside the training set are accepted and flagged in the response, as the
model's encoder ignores them.

The validators are pydantic ``TypeAdapter``s over ``TypedDict``s: the raw body is parsed and
validated in one pass by pydantic-core (no ``json.loads`` then model building), and rows come out
as plain dicts keyed by column name, ready for the predictor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

import numpy as np
from pydantic import ConfigDict, Field, TypeAdapter

from lambdaserve.kernel.capture import PREDICTION_ID_PATTERN
from lambdaserve.kernel.manifest import ClassLabel
from lambdaserve.kernel.schema import FeatureSchema, FeatureSpec
from lambdaserve.serving.feedback_tokens import FEEDBACK_TOKEN_PATTERN

MAX_CATEGORY_LENGTH = 256
#: Models compute in float32 (ONNX Runtime, most encoders): a larger finite value overflows to
#: infinity there and the model answers NaN, so requests stay inside float32's range.
FLOAT32_MAX = float(np.finfo(np.float32).max)
Float32 = Annotated[float, Field(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
REF_TEMPLATE = "#/components/schemas/{model}"


def _annotation(spec: FeatureSpec) -> Any:
    if spec.kind == "categorical":
        base: Any = Annotated[str, Field(max_length=MAX_CATEGORY_LENGTH)]
    elif spec.dtype == "bool":
        base = bool | Float32
    else:
        base = Float32
    description = (
        f"categorical; training categories: {', '.join(spec.categories[:20])}"
        if spec.kind == "categorical"
        else f"numeric ({spec.dtype}); training range [{spec.minimum}, {spec.maximum}]"
    )
    if spec.nullable:
        return Annotated[base | None, Field(description=description + "; null allowed")]
    return Annotated[base, Field(description=description)]


@dataclass(frozen=True)
class RequestValidators:
    predict: TypeAdapter[Any]
    batch: TypeAdapter[Any]
    feedback: TypeAdapter[Any]

    def openapi_components(self) -> dict[str, Any]:
        """JSON schemas of the request bodies and the objects they hold, for /docs."""
        components: dict[str, Any] = {}
        for adapter in (self.predict, self.batch, self.feedback):
            schema = adapter.json_schema(ref_template=REF_TEMPLATE)
            components.update(schema.pop("$defs", {}))
            components[schema["title"]] = schema
        return components


def _typed_dict(name: str, fields: dict[str, Any], config: ConfigDict) -> Any:
    """A TypedDict built at runtime (keys are column names, which need not be identifiers)."""
    factory: Any = TypedDict
    typed = factory(name, fields)
    typed.__pydantic_config__ = config
    return typed


def _outcome_field(classes: tuple[ClassLabel, ...] | None) -> tuple[str, Any]:
    """Feedback's outcome: ``label``, one of the classes (classification), or ``value``, a
    finite number (regression: ``classes`` is None)."""
    if classes is None:
        return "value", Annotated[float, Field(description="the observed value (finite)")]
    return "label", Annotated[
        Literal[classes],
        Field(description=f"the observed class: one of {list(classes)}"),
    ]


def build_request_validators(
    schema: FeatureSchema, *, classes: tuple[ClassLabel, ...] | None, max_batch_rows: int
) -> RequestValidators:
    """Validators of the model's three request bodies; ``classes`` is None for regression."""
    strict = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    features = _typed_dict(
        "Features", {spec.name: _annotation(spec) for spec in schema.features}, strict
    )
    rows = Annotated[
        list[features],  # type: ignore[valid-type]
        Field(min_length=1, max_length=max_batch_rows, description=f"1 to {max_batch_rows} rows"),
    ]
    predict = _typed_dict("PredictRequest", {"features": features}, strict)
    outcome_name, outcome_type = _outcome_field(classes)
    batch = _typed_dict("BatchPredictRequest", {"instances": rows}, strict)
    outcome = _typed_dict(
        "Feedback",
        {
            "prediction_id": Annotated[
                str,
                Field(pattern=PREDICTION_ID_PATTERN, description="as a prediction answered it"),
            ],
            outcome_name: outcome_type,
            "feedback_token": Annotated[
                str,
                Field(
                    pattern=FEEDBACK_TOKEN_PATTERN,
                    description="as the prediction answered it: proof the id was served",
                ),
            ],
        },
        strict,
    )
    feedback = _typed_dict(
        "FeedbackRequest",
        {
            "feedback": Annotated[
                list[outcome],  # type: ignore[valid-type]
                Field(min_length=1, max_length=max_batch_rows),
            ]
        },
        strict,
    )
    return RequestValidators(
        predict=TypeAdapter(predict), batch=TypeAdapter(batch), feedback=TypeAdapter(feedback)
    )
