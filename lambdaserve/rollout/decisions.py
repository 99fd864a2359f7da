"""The rollout controller's decision rules: what one tick does, given what it saw.

Pure rules, no I/O. ``outside_change`` compares the live alias with the routing the controller
last wrote; ``decide`` then reads the guard report, the plan and the clock: any alarm rolls back,
the first tick makes the first shift, a step waits out its interval and its minimum samples, an
A/B split holds, and a cleared step shifts to the next weight or promotes. The controller reads
the alias and the guard, asks these rules, and carries out the ``Decision`` (alias writes,
journal, registry hooks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lambdaserve.rollout.guard import GuardReport
from lambdaserve.rollout.plan import RolloutPlan
from lambdaserve.rollout.state import Action, RolloutState, RolloutStatus


@dataclass(frozen=True)
class Decision:
    """One tick's move. ``shift`` routes ``weight`` to the challenger and enters plan step
    ``step``; ``promote`` and ``rollback`` finish the rollout; ``wait``, ``hold`` and ``abort``
    change no routing and are recorded with the ``status`` they set, if any."""

    action: Action
    reason: str
    weight: float = 0.0
    step: int | None = None
    status: RolloutStatus | None = None


def outside_change(state: RolloutState, live: dict[str, float]) -> Decision | None:
    """Abort, changing nothing, when the live alias's shares are not what the controller last
    wrote (someone else changed it); None when they are."""
    if live == state.routing:
        return None
    return Decision(
        "abort",
        f"the live alias was changed outside the controller: expected {state.routing}, "
        f"found {live}; the controller changed nothing",
        status="aborted",
    )


def decide(state: RolloutState, report: GuardReport, now: datetime) -> Decision | None:
    """The next move of a running rollout whose alias is as the controller left it. None: an
    A/B split already holding stays as it is, with nothing to record."""
    if report.alarms:
        return Decision("rollback", "guard alarm: " + "; ".join(report.alarms))
    if state.step == -1:
        return _first_step(state.plan)
    if state.status == "holding":
        return None
    waiting = _waiting(state, report, now)
    return waiting if waiting is not None else _after_step(state, report)


def _first_step(plan: RolloutPlan) -> Decision:
    """The first tick with guards clear: the first step weight, or all traffic at once."""
    if not plan.weights and plan.min_samples == 0:
        return Decision("promote", "all-at-once: guards clear")
    if not plan.weights:
        # All traffic moves now, but the challenger is crowned only once it has served
        # min_samples requests under the guards (which can still roll it back).
        return Decision(
            "shift",
            f"all-at-once: 100% to the challenger; promoted after {plan.min_samples} "
            "requests with guards clear",
            weight=1.0,
            step=0,
        )
    return Decision(
        "shift",
        f"step 1/{len(plan.weights)}: {plan.weights[0]:.0%} to the challenger",
        weight=plan.weights[0],
        step=0,
    )


def _waiting(state: RolloutState, report: GuardReport, now: datetime) -> Decision | None:
    """A wait while the current step has not been held for the plan's interval or has not yet
    seen the plan's minimum of challenger requests; None once it has both."""
    plan = state.plan
    waited = (now - state.step_started_at).total_seconds()
    if waited < plan.interval_seconds:
        return Decision("wait", f"step {state.step + 1} holds {plan.interval_seconds:.0f}s")
    if report.challenger_samples < plan.min_samples:
        return Decision(
            "wait",
            f"step {state.step + 1}: {report.challenger_samples} of {plan.min_samples} "
            "challenger requests; waiting for enough traffic to judge",
        )
    return None


def _after_step(state: RolloutState, report: GuardReport) -> Decision:
    """A step that has cleared its guards, interval and samples: an A/B split holds; any other
    plan shifts to its next weight, or promotes after its last."""
    plan = state.plan
    if not plan.promotes:
        return Decision(
            "hold", f"A/B split held at {state.weight:.0%} until stopped", status="holding"
        )
    if state.step + 1 < len(plan.weights):
        weight = plan.weights[state.step + 1]
        return Decision(
            "shift",
            f"step {state.step + 2}/{len(plan.weights)}: {weight:.0%} to the challenger "
            f"(guards clear on {report.challenger_samples} requests)",
            weight=weight,
            step=state.step + 1,
        )
    return Decision("promote", f"guards clear on {report.challenger_samples} challenger requests")
