"""The feature schema: column order, kinds, observed ranges and categories.

It is written by training into the manifest and read by serving to build request models, so the
two sides can never disagree about what a row is.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Categorical missing values are encoded as this category, both at training and serving time.
MISSING_CATEGORY = "__missing__"
#: Text that means "no value" in real data files. Training turns these into missing values and
#: serving does the same for categorical inputs, so both sides see the same thing. ("none" is
#: deliberately absent: it is an ordinary category in many tables, e.g. internet_service=none.)
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "?", ".", "#n/a"})

FeatureKind = Literal["numeric", "categorical"]
FeatureDtype = Literal["float", "int", "bool", "string"]


class FeatureSpec(BaseModel):
    """One input column as observed in the training data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    kind: FeatureKind
    dtype: FeatureDtype
    nullable: bool
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] = ()
    missing_fraction: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _kind_matches_fields(self) -> FeatureSpec:
        if self.kind == "categorical" and self.dtype != "string":
            raise ValueError(f"categorical feature {self.name!r} must have dtype 'string'")
        if self.kind == "numeric" and self.dtype == "string":
            raise ValueError(f"numeric feature {self.name!r} cannot have dtype 'string'")
        if self.kind == "numeric" and self.categories:
            raise ValueError(f"numeric feature {self.name!r} cannot list categories")
        return self


class FeatureSchema(BaseModel):
    """The ordered list of features a model expects."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    features: tuple[FeatureSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> FeatureSchema:
        names = [f.name for f in self.features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate feature names: {duplicates}")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def numeric(self) -> tuple[FeatureSpec, ...]:
        return tuple(f for f in self.features if f.kind == "numeric")

    @property
    def categorical(self) -> tuple[FeatureSpec, ...]:
        return tuple(f for f in self.features if f.kind == "categorical")
