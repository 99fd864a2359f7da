"""Mergeable histograms of the model's output over a window (DESIGN "Drift"), per task:

- the score (``CaptureRecord.score``: the positive-class probability of a binary classifier, the
  prediction of a regression) on the reference score edges (``ScoreWindow``);
- the predicted class of a multiclass classifier, counted by ``class_key`` (``ClassWindow``).

Plain counts, like the feature windows in ``drift.histograms``, so they merge the same way. The
bin-edge checks the numeric feature windows share live here too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from itertools import pairwise
from typing import Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, NonNegativeInt, model_validator

from lambdaserve.kernel.reference import bin_counts

#: What is compared of the model's output: its score histogram, or its predicted classes.
OutputKind = Literal["score", "predicted_class"]


def check_edges(edges: tuple[float, ...], counts: tuple[int, ...]) -> None:
    if any(not np.isfinite(e) for e in edges):
        raise ValueError(f"bin edges must be finite, got {edges}")
    if any(b <= a for a, b in pairwise(edges)):
        raise ValueError(f"bin edges must be strictly increasing, got {edges}")
    if len(counts) != len(edges) + 1:
        raise ValueError(f"{len(edges)} edges need {len(edges) + 1} counts, got {len(counts)}")


def same_edges(mine: tuple[float, ...], theirs: tuple[float, ...], problem: str) -> None:
    if mine != theirs:
        raise ValueError(f"{problem}: edges {mine} vs {theirs}")


class ScoreWindow(BaseModel):
    """Counts of scores (positive-class probabilities or predictions) per reference score bin."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    edges: tuple[float, ...]
    counts: tuple[NonNegativeInt, ...]

    @model_validator(mode="after")
    def _shape(self) -> Self:
        check_edges(self.edges, self.counts)
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
        same_edges(self.edges, other.edges, "cannot merge score windows binned differently")
        counts = tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        return self.model_copy(update={"counts": counts})


class ClassWindow(BaseModel):
    """Counts of each predicted class (multiclass classification), keyed by ``class_key``; any
    class is counted, one the reference never predicted included."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    counts: dict[str, NonNegativeInt]

    @classmethod
    def from_values(cls, classes: Iterable[str]) -> Self:
        return cls(counts=dict(sorted(Counter(classes).items())))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def merge(self, other: ClassWindow) -> Self:
        merged = Counter(self.counts)
        merged.update(other.counts)
        return self.model_copy(update={"counts": dict(sorted(merged.items()))})
