"""The drift baseline stored in every bundle as ``reference.json`` (DESIGN "Drift").

Numeric features keep reference quantile edges with open-ended outer bins plus a missing bin;
categoricals keep category counts plus a missing count; the positive-class score keeps a fixed
histogram. All are plain counts, so windows of production data binned the same way can be merged.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

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
    score: ScoreReference


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


def build_reference(
    schema: FeatureSchema,
    columns: Mapping[str, npt.NDArray[np.generic]],
    scores: npt.NDArray[np.float64],
) -> ReferenceProfile:
    """Profile the training columns (as encoded for the pipeline) and holdout scores."""
    features: dict[str, NumericReference | CategoricalReference] = {}
    for spec in schema.features:
        column = columns[spec.name]
        if spec.kind == "numeric":
            features[spec.name] = numeric_reference(column.astype(np.float64))
        else:
            features[spec.name] = categorical_reference(column.astype(object))
    rows = len(next(iter(columns.values())))
    return ReferenceProfile(rows=rows, features=features, score=score_reference(scores))
