"""Mergeable histograms of one window of production data (DESIGN "Drift").

A window is binned exactly like the bundle's ``reference.json``: numeric values on the reference
quantile edges with open-ended outer bins plus a missing count, categoricals as category counts
plus a missing count, scores on the reference score edges. Everything is plain counts, so a
window computed in parts (one part per worker, saved as JSON) merges into the same histogram as
the whole window: ``a.merge(b)`` equals ``from_values(concat(a_values, b_values))``.
``aligned_bins`` lines a window up with its reference as the two count vectors a test compares.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from itertools import pairwise
from typing import Annotated, Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, model_validator

from lambdaserve.kernel.reference import (
    CategoricalReference,
    NumericReference,
    ReferenceProfile,
    ScoreReference,
    bin_counts,
)
from lambdaserve.kernel.schema import MISSING_CATEGORY


def _check_edges(edges: tuple[float, ...], counts: tuple[int, ...]) -> None:
    if any(not np.isfinite(e) for e in edges):
        raise ValueError(f"bin edges must be finite, got {edges}")
    if any(b <= a for a, b in pairwise(edges)):
        raise ValueError(f"bin edges must be strictly increasing, got {edges}")
    if len(counts) != len(edges) + 1:
        raise ValueError(f"{len(edges)} edges need {len(edges) + 1} counts, got {len(counts)}")


def _same_edges(mine: tuple[float, ...], theirs: tuple[float, ...], problem: str) -> None:
    if mine != theirs:
        raise ValueError(f"{problem}: edges {mine} vs {theirs}")


class NumericWindow(BaseModel):
    """Counts per reference bin (value <= edge goes left; outer bins open-ended) and missing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["numeric"] = "numeric"
    edges: tuple[float, ...]
    counts: tuple[NonNegativeInt, ...]
    missing: NonNegativeInt

    @model_validator(mode="after")
    def _shape(self) -> Self:
        _check_edges(self.edges, self.counts)
        return self

    @classmethod
    def from_values(cls, values: npt.NDArray[np.float64], edges: tuple[float, ...]) -> Self:
        """Bin ``values`` (NaN = missing) on ``edges``; nothing is dropped, however far out."""
        counts, missing = bin_counts(np.asarray(values, dtype=np.float64), tuple(edges))
        return cls(edges=tuple(edges), counts=tuple(counts), missing=missing)

    @property
    def total(self) -> int:
        return sum(self.counts) + self.missing

    def merge(self, other: NumericWindow) -> Self:
        _same_edges(self.edges, other.edges, "cannot merge numeric windows binned differently")
        counts = tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        return self.model_copy(update={"counts": counts, "missing": self.missing + other.missing})


class CategoricalWindow(BaseModel):
    """Counts per observed category (any category, seen in the reference or not) and missing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["categorical"] = "categorical"
    counts: dict[str, NonNegativeInt]
    missing: NonNegativeInt

    @model_validator(mode="after")
    def _no_missing_category(self) -> Self:
        if MISSING_CATEGORY in self.counts:
            raise ValueError(f"{MISSING_CATEGORY!r} is counted in 'missing', not as a category")
        return self

    @classmethod
    def from_values(cls, values: npt.NDArray[np.generic]) -> Self:
        """Count string ``values``; ``MISSING_CATEGORY`` counts as missing."""
        # Count the raw values first and stringify each distinct one once: 7x faster than
        # stringifying every row (measured 0.25 s -> 0.04 s per 1M-row column).
        table: Counter[str] = Counter()
        for value, count in Counter(np.asarray(values).ravel().tolist()).items():
            table[str(value)] += count
        missing = table.pop(MISSING_CATEGORY, 0)
        return cls(counts=dict(sorted(table.items())), missing=missing)

    @property
    def total(self) -> int:
        return sum(self.counts.values()) + self.missing

    def merge(self, other: CategoricalWindow) -> Self:
        merged = Counter(self.counts)
        merged.update(other.counts)
        return self.model_copy(
            update={"counts": dict(sorted(merged.items())), "missing": self.missing + other.missing}
        )


class ScoreWindow(BaseModel):
    """Counts of positive-class scores per reference score bin."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    edges: tuple[float, ...]
    counts: tuple[NonNegativeInt, ...]

    @model_validator(mode="after")
    def _shape(self) -> Self:
        _check_edges(self.edges, self.counts)
        return self

    @classmethod
    def from_values(cls, scores: npt.NDArray[np.float64], edges: tuple[float, ...]) -> Self:
        """Bin scores on ``edges``; a NaN score is a bug upstream and is refused."""
        counts, missing = bin_counts(np.asarray(scores, dtype=np.float64), tuple(edges))
        if missing:
            raise ValueError(f"{missing} scores are NaN; a model score is never missing")
        return cls(edges=tuple(edges), counts=tuple(counts))

    @property
    def total(self) -> int:
        return sum(self.counts)

    def merge(self, other: ScoreWindow) -> Self:
        _same_edges(self.edges, other.edges, "cannot merge score windows binned differently")
        counts = tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        return self.model_copy(update={"counts": counts})


FeatureWindow = Annotated[NumericWindow | CategoricalWindow, Field(discriminator="kind")]


class FeatureWindows(BaseModel):
    """One window's histograms: every reference feature by name, plus the prediction score."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    features: dict[str, FeatureWindow]
    score: ScoreWindow

    @classmethod
    def empty(cls, reference: ReferenceProfile) -> Self:
        """The window with no rows, binned like ``reference`` (the identity of ``merge``)."""
        no_rows = np.array([], dtype=np.float64)
        return cls.from_columns(reference, {name: no_rows for name in reference.features}, no_rows)

    @classmethod
    def from_columns(
        cls,
        reference: ReferenceProfile,
        columns: Mapping[str, npt.NDArray[np.generic]],
        scores: npt.NDArray[np.float64],
    ) -> Self:
        """Bin production columns (encoded as at training time) on the reference's bins."""
        absent = sorted(set(reference.features) - set(columns))
        if absent:
            raise ValueError(f"columns missing for reference features: {absent}")
        features: dict[str, NumericWindow | CategoricalWindow] = {}
        for name, ref in reference.features.items():
            if isinstance(ref, NumericReference):
                features[name] = NumericWindow.from_values(
                    columns[name].astype(np.float64), ref.edges
                )
            else:
                features[name] = CategoricalWindow.from_values(columns[name].astype(str))
        return cls(features=features, score=ScoreWindow.from_values(scores, reference.score.edges))

    def merge(self, other: FeatureWindows) -> Self:
        if set(self.features) != set(other.features):
            raise ValueError(
                "cannot merge windows of different features: "
                f"{sorted(self.features)} vs {sorted(other.features)}"
            )
        merged: dict[str, NumericWindow | CategoricalWindow] = {}
        for name, mine in self.features.items():
            theirs = other.features[name]
            match mine, theirs:
                case NumericWindow(), NumericWindow():
                    merged[name] = mine.merge(theirs)
                case CategoricalWindow(), CategoricalWindow():
                    merged[name] = mine.merge(theirs)
                case _:
                    raise ValueError(f"feature {name!r} is {mine.kind} here, {theirs.kind} there")
        return self.model_copy(update={"features": merged, "score": self.score.merge(other.score)})


Reference = NumericReference | CategoricalReference | ScoreReference
Window = NumericWindow | CategoricalWindow | ScoreWindow


def align_categories(
    reference: Mapping[str, int],
    reference_missing: int,
    window: Mapping[str, int],
    window_missing: int,
) -> tuple[list[int], list[int]]:
    """Count vectors over: reference categories (sorted), one unseen bucket, the missing bucket."""
    categories = sorted(reference)
    unseen = sum(n for category, n in window.items() if category not in reference)
    return (
        [reference[c] for c in categories] + [0, reference_missing],
        [window.get(c, 0) for c in categories] + [unseen, window_missing],
    )


_NOT_REFERENCE_BINS = "window is not binned on the reference edges"


def aligned_bins(reference: Reference, window: Window) -> tuple[list[int], list[int]]:
    """The two count vectors a test compares; refuses windows binned unlike the reference."""
    if isinstance(reference, NumericReference) and isinstance(window, NumericWindow):
        _same_edges(reference.edges, window.edges, _NOT_REFERENCE_BINS)
        return [*reference.counts, reference.missing], [*window.counts, window.missing]
    if isinstance(reference, ScoreReference) and isinstance(window, ScoreWindow):
        _same_edges(reference.edges, window.edges, _NOT_REFERENCE_BINS)
        return list(reference.counts), list(window.counts)
    if isinstance(reference, CategoricalReference) and isinstance(window, CategoricalWindow):
        return align_categories(reference.counts, reference.missing, window.counts, window.missing)
    raise ValueError(
        f"a {type(window).__name__} cannot be compared to a {type(reference).__name__}"
    )
