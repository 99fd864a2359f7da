"""The promotion gate: may a candidate become the challenger?

It must meet absolute thresholds, and, when a champion exists, must not be worse than the
champion by more than a tolerance on any compared metric, both scored on the same holdout.
Pure function; the decision says every number it used.

Thresholds and compared metrics are the task's own unless a policy names them: binary ROC AUC
at least 0.6, Brier at most 0.25, compared on ROC AUC, log loss and Brier; multiclass compared
on log loss and macro F1; regression R² at least 0 (better than predicting the mean), compared
on RMSE and MAE (lower is better). The tolerance is in the metric's own units.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from lambdaserve.kernel.manifest import Task

HIGHER_IS_BETTER = frozenset(
    {"roc_auc", "accuracy", "precision", "recall", "f1", "macro_f1", "weighted_f1", "r2"}
)
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae"})


class GatePolicy(BaseModel):
    """What a candidate must meet; a field left out (None) takes the task's default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    minimums: dict[str, float] | None = None
    maximums: dict[str, float] | None = None
    compare: tuple[str, ...] | None = None
    tolerance: float = Field(default=0.01, ge=0.0)

    def for_task(self, task: Task) -> GatePolicy:
        """This policy with the task's defaults where it named nothing."""
        defaults = TASK_DEFAULTS[task]
        return GatePolicy(
            minimums=defaults.minimums if self.minimums is None else self.minimums,
            maximums=defaults.maximums if self.maximums is None else self.maximums,
            compare=defaults.compare if self.compare is None else self.compare,
            tolerance=self.tolerance,
        )


TASK_DEFAULTS: dict[Task, GatePolicy] = {
    "binary_classification": GatePolicy(
        minimums={"roc_auc": 0.6},
        maximums={"brier": 0.25},
        compare=("roc_auc", "log_loss", "brier"),
    ),
    "multiclass_classification": GatePolicy(
        minimums={}, maximums={}, compare=("log_loss", "macro_f1")
    ),
    "regression": GatePolicy(minimums={"r2": 0.0}, maximums={}, compare=("rmse", "mae")),
}


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
    """How much worse the candidate is (positive) on ``metric``; per-class recalls are higher
    is better like the rest of the classification scores."""
    higher = metric in HIGHER_IS_BETTER or metric.startswith("recall_")
    return champion - candidate if higher else candidate - champion


def decide(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    policy: GatePolicy,
    *,
    champion_version: str | None = None,
    holdout: str | None = None,
    force: bool = False,
    task: Task = "binary_classification",
) -> GateDecision:
    """The decision on ``candidate`` (and ``champion``'s metrics on the same rows, when there
    is one) under ``policy`` completed with ``task``'s defaults."""
    policy = policy.for_task(task)
    failures = _threshold_failures(candidate, policy)
    if champion is not None:
        failures += _comparison_failures(candidate, champion, policy)
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


#: Why a candidate may have no holdout metrics, and the two ways to give it some.
NO_METRICS = (
    "the model has no holdout metrics to gate on (save_model without eval_set): pass "
    "eval_set=(X_holdout, y_holdout) to save_model, or --holdout CSV here"
)


def _threshold_failures(candidate: Mapping[str, float], policy: GatePolicy) -> list[str]:
    if not candidate and (policy.minimums or policy.maximums):
        return [NO_METRICS]
    failures: list[str] = []
    for metric, minimum in sorted((policy.minimums or {}).items()):
        value = candidate.get(metric)
        if value is None or value < minimum:
            failures.append(f"{metric} {_fmt(value)} is below the minimum {minimum:.4f}")
    for metric, maximum in sorted((policy.maximums or {}).items()):
        value = candidate.get(metric)
        if value is None or value > maximum:
            failures.append(f"{metric} {_fmt(value)} is above the maximum {maximum:.4f}")
    return failures


def _comparison_failures(
    candidate: Mapping[str, float], champion: Mapping[str, float], policy: GatePolicy
) -> list[str]:
    failures: list[str] = []
    for metric in policy.compare or ():
        if metric not in candidate or metric not in champion:
            failures.append(f"{metric} is missing, so it cannot be compared")
            continue
        gap = _worse_by(metric, candidate[metric], champion[metric])
        if gap > policy.tolerance:
            failures.append(
                f"{metric} {candidate[metric]:.4f} is worse than champion "
                f"{champion[metric]:.4f} by {gap:.4f} (tolerance {policy.tolerance:.4f})"
            )
    return failures


def _fmt(value: float | None) -> str:
    return "missing" if value is None else f"{value:.4f}"
