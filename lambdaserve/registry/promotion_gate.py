"""The promotion gate: may a candidate become the challenger?

It must meet absolute thresholds, and, when a champion exists, must not be worse than the
champion by more than a tolerance on any compared metric, both scored on the same holdout.
Pure function; the decision says every number it used.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

HIGHER_IS_BETTER = frozenset({"roc_auc", "accuracy", "precision", "recall", "f1"})
LOWER_IS_BETTER = frozenset({"log_loss", "brier"})


class GatePolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    minimums: dict[str, float] = Field(default_factory=lambda: {"roc_auc": 0.6})
    maximums: dict[str, float] = Field(default_factory=lambda: {"brier": 0.25})
    compare: tuple[str, ...] = ("roc_auc", "log_loss", "brier")
    tolerance: float = Field(default=0.01, ge=0.0, le=1.0)


class GateDecision(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    passed: bool
    forced: bool = False
    reasons: tuple[str, ...]
    candidate: dict[str, float]
    champion: dict[str, float] | None = None
    champion_version: str | None = None
    holdout: str | None = Field(default=None, description="what both were scored on")
    policy: GatePolicy

    @property
    def accepted(self) -> bool:
        return self.passed or self.forced


def _worse_by(metric: str, candidate: float, champion: float) -> float:
    """How much worse the candidate is (positive) on ``metric``."""
    return champion - candidate if metric in HIGHER_IS_BETTER else candidate - champion


def decide(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    policy: GatePolicy,
    *,
    champion_version: str | None = None,
    holdout: str | None = None,
    force: bool = False,
) -> GateDecision:
    failures: list[str] = []
    for metric, minimum in sorted(policy.minimums.items()):
        value = candidate.get(metric)
        if value is None or value < minimum:
            failures.append(f"{metric} {_fmt(value)} is below the minimum {minimum:.4f}")
    for metric, maximum in sorted(policy.maximums.items()):
        value = candidate.get(metric)
        if value is None or value > maximum:
            failures.append(f"{metric} {_fmt(value)} is above the maximum {maximum:.4f}")
    if champion is not None:
        for metric in policy.compare:
            if metric not in candidate or metric not in champion:
                failures.append(f"{metric} is missing, so it cannot be compared")
                continue
            gap = _worse_by(metric, candidate[metric], champion[metric])
            if gap > policy.tolerance:
                failures.append(
                    f"{metric} {candidate[metric]:.4f} is worse than champion "
                    f"{champion[metric]:.4f} by {gap:.4f} (tolerance {policy.tolerance:.4f})"
                )
    passed = not failures
    reasons = failures or [
        "meets every threshold"
        + (" and is not worse than the champion beyond the tolerance" if champion else "")
    ]
    if force and not passed:
        reasons = [*reasons, "forced past the gate (--force)"]
    return GateDecision(
        passed=passed,
        forced=force and not passed,
        reasons=tuple(reasons),
        candidate=dict(candidate),
        champion=dict(champion) if champion is not None else None,
        champion_version=champion_version,
        holdout=holdout,
        policy=policy,
    )


def _fmt(value: float | None) -> str:
    return "missing" if value is None else f"{value:.4f}"
