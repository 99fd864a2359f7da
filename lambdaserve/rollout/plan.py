"""Rollout plans as data: canary, linear, A/B and all-at-once.

A plan is the sequence of challenger weights the ``live`` alias moves through (each held for
``interval_seconds`` and only left once the step has ``min_samples`` challenger requests), and
whether it ends by promoting the challenger (every plan but ``ab``, which holds its split until
someone stops it). Weights are in (0, 1): full traffic is reached by promotion, which makes the
challenger the alias's primary version (Lambda routes to at most two versions).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PlanKind = Literal["canary", "linear", "ab", "all-at-once"]


class RolloutPlan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: PlanKind
    weights: tuple[float, ...] = Field(description="challenger weight of each step, in (0, 1)")
    interval_seconds: float = Field(default=300.0, ge=0.0, le=7 * 24 * 3600)
    min_samples: int = Field(default=100, ge=0)

    @model_validator(mode="after")
    def _valid(self) -> RolloutPlan:
        if any(not 0.0 < w < 1.0 for w in self.weights):
            raise ValueError("every step weight must be strictly between 0 and 1")
        if any(b <= a for a, b in zip(self.weights, self.weights[1:], strict=False)):
            raise ValueError("step weights must increase")
        if self.kind == "all-at-once" and self.weights:
            raise ValueError("an all-at-once plan has no intermediate steps")
        if self.kind in ("canary", "ab") and len(self.weights) != 1:
            raise ValueError(f"a {self.kind} plan has exactly one step weight")
        if self.kind == "linear" and len(self.weights) < 1:
            raise ValueError("a linear plan needs at least one step")
        return self

    @property
    def promotes(self) -> bool:
        return self.kind != "ab"

    @classmethod
    def canary(cls, weight: float, interval_seconds: float, min_samples: int = 100) -> RolloutPlan:
        return cls(
            kind="canary",
            weights=(weight,),
            interval_seconds=interval_seconds,
            min_samples=min_samples,
        )

    @classmethod
    def linear(cls, step: float, interval_seconds: float, min_samples: int = 100) -> RolloutPlan:
        if not 0.0 < step < 1.0:
            raise ValueError("a linear step must be strictly between 0 and 1")
        count = int(round(1.0 / step, 9))
        weights = tuple(round(step * i, 6) for i in range(1, count + 1) if step * i < 1.0 - 1e-9)
        return cls(
            kind="linear",
            weights=weights,
            interval_seconds=interval_seconds,
            min_samples=min_samples,
        )

    @classmethod
    def ab(cls, weight: float, min_samples: int = 100) -> RolloutPlan:
        return cls(kind="ab", weights=(weight,), interval_seconds=0.0, min_samples=min_samples)

    @classmethod
    def all_at_once(cls, min_samples: int = 0) -> RolloutPlan:
        return cls(kind="all-at-once", weights=(), interval_seconds=0.0, min_samples=min_samples)
