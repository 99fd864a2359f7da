"""The drift baseline stored in every bundle as ``reference.json`` (DESIGN "Drift").

Numeric features keep reference quantile edges with open-ended outer bins plus a missing bin;
categoricals keep category counts plus a missing count. What the model output on the holdout is
kept per task: binary classification, the positive class's probability on fixed edges
(``score``); regression, the prediction on its own quantile edges (``score`` as well);
multiclass classification, how often each class was the predicted one (``predicted_classes``).
All are plain counts, so windows of production data binned the same way can be merged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from lambdaserve.kernel.manifest import ClassLabel, Task, class_key
from lambdaserve.kernel.schema import MISSING_CATEGORY, FeatureSchema

QUANTILES = tuple(q / 10 for q in range(1, 10))
SCORE_EDGES = tuple(q / 10 for q in range(1, 10))


class NumericReference(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = "numeric"
    edges: tuple[float, ...] = Field(description="inner bin edges; bins are open-ended outside")
    counts: tuple[int, ...] = Field(description="len(edges) + 1 counts, lowest bin first")
    missing: int


class CategoricalReference(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = "categorical"
    counts: dict[str, int]
    missing: int


class ScoreReference(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    edges: tuple[float, ...]
    counts: tuple[int, ...]


class ReferenceProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int
    features: dict[str, NumericReference | CategoricalReference]
    score: ScoreReference | None = Field(
        default=None,
        description="binary: the positive class's probability; regression: the prediction",
    )
    predicted_classes: dict[str, int] | None = Field(
        default=None, description="multiclass: holdout rows per predicted class (class_key)"
    )


def quantile_edges(values: npt.NDArray[np.float64]) -> tuple[float, ...]:
    present = values[~np.isnan(values)]
    if present.size == 0:
        return ()
    return tuple(float(e) for e in np.unique(np.quantile(present, QUANTILES)))


def bin_counts(values: npt.NDArray[np.float64], edges: tuple[float, ...]) -> tuple[list[int], int]:
    """Counts per bin (value <= edge goes left) and the number of missing values."""
    missing = np.isnan(values)
    bins = np.searchsorted(np.asarray(edges, dtype=np.float64), values[~missing], side="left")
    return np.bincount(bins, minlength=len(edges) + 1).tolist(), int(missing.sum())


def numeric_reference(values: npt.NDArray[np.float64]) -> NumericReference:
    edges = quantile_edges(values)
    counts, missing = bin_counts(values, edges)
    return NumericReference(edges=edges, counts=tuple(counts), missing=missing)


def categorical_reference(values: npt.NDArray[np.object_]) -> CategoricalReference:
    labels, counts = np.unique(values.astype(str), return_counts=True)
    table = {str(k): int(v) for k, v in zip(labels, counts, strict=True)}
    missing = table.pop(MISSING_CATEGORY, 0)
    return CategoricalReference(counts=table, missing=missing)


def score_reference(scores: npt.NDArray[np.float64]) -> ScoreReference:
    counts, _ = bin_counts(np.asarray(scores, dtype=np.float64), SCORE_EDGES)
    return ScoreReference(edges=SCORE_EDGES, counts=tuple(counts))


def prediction_reference(predictions: npt.NDArray[np.float64]) -> ScoreReference:
    """A regression's predictions on their own decile edges (open-ended outer bins)."""
    values = np.asarray(predictions, dtype=np.float64)
    edges = quantile_edges(values)
    counts, _ = bin_counts(values, edges)
    return ScoreReference(edges=edges, counts=tuple(counts))


def predicted_class_counts(
    probabilities: npt.NDArray[np.float64], classes: Sequence[ClassLabel]
) -> dict[str, int]:
    """Rows per most probable class, every class listed (``class_key`` spelling)."""
    predicted = np.argmax(np.asarray(probabilities, dtype=np.float64), axis=1)
    counts = np.bincount(predicted, minlength=len(classes)).tolist()
    return {class_key(label): int(n) for label, n in zip(classes, counts, strict=True)}


def build_reference(
    schema: FeatureSchema,
    columns: Mapping[str, npt.NDArray[np.generic]],
    outputs: npt.NDArray[np.float64],
    *,
    task: Task = "binary_classification",
    classes: Sequence[ClassLabel] = (),
) -> ReferenceProfile:
    """Profile the training columns (as encoded for the pipeline) and the model's holdout
    outputs: class probabilities ``(n, n_classes)`` (binary also takes the positive class's
    ``(n,)``), or regression predictions ``(n,)``."""
    features: dict[str, NumericReference | CategoricalReference] = {}
    for spec in schema.features:
        column = columns[spec.name]
        if spec.kind == "numeric":
            features[spec.name] = numeric_reference(column.astype(np.float64))
        else:
            features[spec.name] = categorical_reference(column.astype(object))
    rows = len(next(iter(columns.values())))
    if task == "multiclass_classification":
        counts = predicted_class_counts(outputs, classes)
        return ReferenceProfile(rows=rows, features=features, predicted_classes=counts)
    if task == "regression":
        score = prediction_reference(outputs)
    else:
        score = score_reference(outputs[:, 1] if outputs.ndim == 2 else outputs)
    return ReferenceProfile(rows=rows, features=features, score=score)
