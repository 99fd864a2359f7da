"""``lambdaserve rollout`` and ``lambdaserve ab``: move the live alias under guard checks.

Exit codes: 0 the rollout promoted, holds or is still running; 5 it was rolled back; 6 it was
aborted because someone else changed the alias.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated

import typer

from lambdaserve.cli.backends import (
    Backend,
    BackendOption,
    BucketOption,
    FunctionOption,
    open_rollout,
)
from lambdaserve.cli.options import KeepVersionsOption, StoreOption
from lambdaserve.cli.rollout_pruning import prune_after
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.rollout import use_cases as rollouts
from lambdaserve.rollout.plan import RolloutPlan
from lambdaserve.rollout.state import RolloutState
from lambdaserve.rollout.use_cases import RolloutContext
from lambdaserve.views.console import fail, out
from lambdaserve.views.rollout import timeline_table
from lambdaserve.wiring import aws

EXIT = {"rolled_back": 5, "aborted": 6}
rollout_app = typer.Typer(help="Canary, linear and all-at-once rollouts of the challenger.")
ab_app = typer.Typer(help="A/B tests: hold a split of the live alias until stopped.")


class PlanKind(StrEnum):
    canary = "canary"
    linear = "linear"
    all_at_once = "all-at-once"


def _finish(
    state: RolloutState, context: RolloutContext | None = None, keep: int | None = None
) -> None:
    out.print(timeline_table(state))
    if context is not None:
        prune_after(context, state, keep)
    if state.status in EXIT:
        raise typer.Exit(EXIT[state.status])


def _watch(
    context: RolloutContext, state: RolloutState, name: str, poll: float, timeout: float
) -> RolloutState:
    deadline = time.monotonic() + timeout
    seen = len(state.history)
    while not state.finished and state.status != "holding" and time.monotonic() < deadline:
        time.sleep(poll)
        state = rollouts.advance(context, name)
        for event in state.history[seen:]:
            out.print(
                f"  {event.at:%H:%M:%S} {event.action:<8} {event.weight:>5.0%}  {event.reason}",
                highlight=False,
            )
        seen = len(state.history)
    return state


StoreArg = StoreOption
NameArg = Annotated[str, typer.Argument(help="Model name")]
WatchOption = Annotated[bool, typer.Option("--watch", help="Keep ticking until it ends")]
PollOption = Annotated[float, typer.Option("--poll", min=0.0, help="Seconds between ticks")]
TimeoutOption = Annotated[float, typer.Option("--timeout", min=0.0, help="Give up watching")]


ForceGateOption = Annotated[
    bool,
    typer.Option(
        "--force", help="Roll out a --challenger the promotion gate did not pass (recorded)"
    ),
]


def _hand_over(context: RolloutContext, state: RolloutState, name: str, arn: str) -> RolloutState:
    """Start the state machine; if that fails after the first shift, put the traffic back."""

    try:
        execution = aws.start_unattended(arn, name)
    except LambdaserveError as exc:
        if state.finished:
            raise
        rollouts.rollback_rollout(context, name, reason=f"unattended start failed: {exc}")
        raise LambdaserveError(
            f"{exc}; the live alias was returned to 100% champion and the rollout rolled back"
        ) from exc
    out.print(f"the state machine runs the rest: {execution}", highlight=False)
    return state


@rollout_app.command("start")
def start(
    name: NameArg,
    challenger: Annotated[
        str | None, typer.Option(help="Registry version [default: challenger]")
    ] = None,
    plan: Annotated[PlanKind, typer.Option("--plan")] = PlanKind.canary,
    weight: Annotated[float, typer.Option(help="Canary weight")] = 0.1,
    step: Annotated[float, typer.Option(help="Linear step")] = 0.25,
    interval: Annotated[float, typer.Option(help="Seconds each step holds")] = 300.0,
    min_samples: Annotated[int, typer.Option(help="Challenger requests a step needs")] = 100,
    watch: WatchOption = False,
    poll: PollOption = 5.0,
    timeout: TimeoutOption = 3600.0,
    unattended: Annotated[
        str | None,
        typer.Option("--unattended", help="AWS: hand the rollout to this state machine ARN"),
    ] = None,
    force: ForceGateOption = False,
    keep_versions: KeepVersionsOption = None,
    store: StoreArg = None,
    backend: BackendOption = Backend.local,
    function: FunctionOption = None,
    bucket: BucketOption = None,
) -> None:
    """Start a rollout of the challenger (rerunning it resumes)."""
    try:
        chosen = {
            PlanKind.canary: lambda: RolloutPlan.canary(weight, interval, min_samples),
            PlanKind.linear: lambda: RolloutPlan.linear(step, interval, min_samples),
            PlanKind.all_at_once: lambda: RolloutPlan.all_at_once(min_samples),
        }[plan]()
        if unattended and backend is not Backend.aws:
            fail("--unattended needs --backend aws", code=2)
        context = open_rollout(store, backend, function, bucket, name)
        if unattended:
            aws.check_state_machine(unattended)  # before any traffic moves
        state = rollouts.start_rollout(context, name, chosen, challenger, force=force)
        if unattended:
            state = _hand_over(context, state, name, unattended)
        elif watch:
            state = _watch(context, state, name, poll, timeout)
    except (LambdaserveError, ValueError) as exc:
        fail(str(exc))
    _finish(state, context, keep_versions)


@rollout_app.command("resume")
def resume(
    name: NameArg,
    watch: WatchOption = False,
    poll: PollOption = 5.0,
    timeout: TimeoutOption = 3600.0,
    keep_versions: KeepVersionsOption = None,
    store: StoreArg = None,
    backend: BackendOption = Backend.local,
    function: FunctionOption = None,
    bucket: BucketOption = None,
) -> None:
    """Advance the rollout by one tick (or until it ends, with --watch)."""
    try:
        context = open_rollout(store, backend, function, bucket, name)
        state = rollouts.advance(context, name)
        if watch:
            state = _watch(context, state, name, poll, timeout)
    except LambdaserveError as exc:
        fail(str(exc))
    _finish(state, context, keep_versions)


@rollout_app.command("status")
def status(
    name: NameArg,
    store: StoreArg = None,
    backend: BackendOption = Backend.local,
    function: FunctionOption = None,
    bucket: BucketOption = None,
) -> None:
    """The rollout's plan, step and timeline. Read-only: it changes neither the alias nor the
    registry (``rollout resume`` brings the registry up to a rollout promoted unattended)."""
    try:
        context = open_rollout(store, backend, function, bucket, name)
        state = context.states.load(name)
        if state is not None and rollouts.registry_behind(context, state):
            out.print(
                f"registry: {name} v{state.challenger.model_version} was promoted by the rollout "
                f"but is not the champion yet: run `lambdaserve rollout resume {name}`"
            )
    except LambdaserveError as exc:
        fail(str(exc))
    if state is None:
        fail(f"no rollout of {name} has been started")
    _finish(state)


@rollout_app.command("promote")
def promote(
    name: NameArg,
    keep_versions: KeepVersionsOption = None,
    store: StoreArg = None,
    backend: BackendOption = Backend.local,
    function: FunctionOption = None,
    bucket: BucketOption = None,
) -> None:
    """Send all traffic to the challenger now and make it champion."""
    try:
        context = open_rollout(store, backend, function, bucket, name)
        state = rollouts.promote_rollout(context, name)
    except LambdaserveError as exc:
        fail(str(exc))
    _finish(state, context, keep_versions)


@rollout_app.command("rollback")
def rollback(
    name: NameArg,
    reason: Annotated[str, typer.Option()] = "rolled back by hand",
    keep_versions: KeepVersionsOption = None,
    store: StoreArg = None,
    backend: BackendOption = Backend.local,
    function: FunctionOption = None,
    bucket: BucketOption = None,
) -> None:
    """Send all traffic back to the champion now, whatever the rollout's state says (after a
    crash, an abort or a change by hand); after a promotion, roll out the earlier version."""
    try:
        context = open_rollout(store, backend, function, bucket, name)
        state = rollouts.rollback_rollout(context, name, reason)
    except LambdaserveError as exc:
        fail(str(exc))
    _finish(state, context, keep_versions)


@ab_app.command("start")
def ab_start(
    name: NameArg,
    weight: Annotated[float, typer.Option(help="Share of traffic for the challenger")] = 0.5,
    challenger: Annotated[str | None, typer.Option(help="Registry version")] = None,
    min_samples: Annotated[int, typer.Option()] = 100,
    force: ForceGateOption = False,
    store: StoreArg = None,
    backend: BackendOption = Backend.local,
    function: FunctionOption = None,
    bucket: BucketOption = None,
) -> None:
    """Split traffic and hold it (guards still roll back on alarms) until `ab stop`."""
    try:
        context = open_rollout(store, backend, function, bucket, name)
        state = rollouts.start_rollout(
            context, name, RolloutPlan.ab(weight, min_samples), challenger, force=force
        )
    except (LambdaserveError, ValueError) as exc:
        fail(str(exc))
    _finish(state)


@ab_app.command("stop")
def ab_stop(
    name: NameArg,
    promote_challenger: Annotated[
        bool, typer.Option("--promote", help="Keep the challenger")
    ] = False,
    keep_versions: KeepVersionsOption = None,
    store: StoreArg = None,
    backend: BackendOption = Backend.local,
    function: FunctionOption = None,
    bucket: BucketOption = None,
) -> None:
    """End the A/B test: back to the champion, or --promote the challenger."""
    try:
        context = open_rollout(store, backend, function, bucket, name)
        state = (
            rollouts.promote_rollout(context, name)
            if promote_challenger
            else rollouts.rollback_rollout(context, name, "A/B test stopped")
        )
    except LambdaserveError as exc:
        fail(str(exc))
    out.print(timeline_table(state))
    prune_after(context, state, keep_versions)
