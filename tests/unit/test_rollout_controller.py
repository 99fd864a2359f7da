"""The controller's decisions, with in-process fakes for the alias, guard and registry ports."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest

from lambdaserve.kernel.errors import RolloutError, TransientRolloutError
from lambdaserve.kernel.function_versions import AliasRouting
from lambdaserve.rollout import controller
from lambdaserve.rollout.plan import RolloutPlan
from lambdaserve.rollout.state import RolloutState, VersionRef
from tests.support.fakes import FakeAlias, FakeGuard, FakeHooks

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CHAMPION = VersionRef(model_version="1", function_version="1")
CHALLENGER = VersionRef(model_version="2", function_version="2")


def _start(plan: RolloutPlan, alias: FakeAlias) -> RolloutState:
    return controller.start(
        model_name="churn",
        function_name="predict",
        champion=CHAMPION,
        challenger=CHALLENGER,
        plan=plan,
        alias=alias,
        published={"1", "2"},
        now=T0,
    )


def _run(
    plan: RolloutPlan, alias: FakeAlias, guard: FakeGuard, hooks: FakeHooks, ticks: list[timedelta]
) -> RolloutState:
    state = _start(plan, alias)
    for offset in ticks:
        state = controller.tick(state, alias=alias, guard=guard, hooks=hooks, now=T0 + offset)
    return state


def test_canary_shifts_waits_then_promotes() -> None:
    alias, guard, hooks = FakeAlias(), FakeGuard(), FakeHooks()
    plan = RolloutPlan.canary(0.1, interval_seconds=60)
    state = _run(plan, alias, guard, hooks, [timedelta(0)])
    assert alias.routing.shares() == {"1": 0.9, "2": 0.1}
    state = controller.tick(
        state, alias=alias, guard=guard, hooks=hooks, now=T0 + timedelta(seconds=30)
    )
    assert state.history[-1].action == "wait" and alias.writes == 1
    state = controller.tick(
        state, alias=alias, guard=guard, hooks=hooks, now=T0 + timedelta(seconds=61)
    )
    assert state.status == "promoted"
    assert alias.routing.shares() == {"2": 1.0}
    assert hooks.events == ["promoted"]
    assert [e.action for e in state.history] == ["start", "shift", "wait", "promote"]


def test_linear_walks_every_step() -> None:
    alias, guard, hooks = FakeAlias(), FakeGuard(), FakeHooks()
    plan = RolloutPlan.linear(0.25, interval_seconds=10)
    state = _run(plan, alias, guard, hooks, [timedelta(seconds=11 * i) for i in range(4)])
    assert [round(e.weight, 2) for e in state.history if e.action in ("shift", "promote")] == [
        0.25,
        0.5,
        0.75,
        1.0,
    ]
    assert state.status == "promoted"


def test_an_alarm_rolls_back_within_one_tick() -> None:
    alias, guard, hooks = FakeAlias(), FakeGuard(), FakeHooks()
    state = _run(RolloutPlan.linear(0.25, 10), alias, guard, hooks, [timedelta(0)])
    guard.alarms = ("5XX rate 30% > 2%",)
    state = controller.tick(
        state, alias=alias, guard=guard, hooks=hooks, now=T0 + timedelta(seconds=1)
    )
    assert state.status == "rolled_back"
    assert alias.routing.shares() == {"1": 1.0}
    assert hooks.events == ["rolled_back: guard alarm: 5XX rate 30% > 2%"]


def test_the_tick_that_finishes_a_rollout_releases_its_guard_and_no_other() -> None:
    alias, guard, hooks = FakeAlias(), FakeGuard(), FakeHooks()
    state = _run(RolloutPlan.linear(0.25, 10), alias, guard, hooks, [timedelta(0)])
    assert guard.released == []  # running: its alarms are still needed
    guard.alarms = ("errors",)
    state = controller.tick(
        state, alias=alias, guard=guard, hooks=hooks, now=T0 + timedelta(seconds=1)
    )
    assert guard.released == [state] and state.status == "rolled_back"

    alias.routing = AliasRouting("live", "2", {}, "r9")  # changed by hand: the next one aborts
    guard.alarms = ()
    other = _run(RolloutPlan.canary(0.1, 10), FakeAlias(), FakeGuard(), FakeHooks(), [])
    aborted = controller.tick(other, alias=alias, guard=guard, hooks=hooks, now=T0)
    assert aborted.status == "aborted" and guard.released == [state, aborted]


def test_too_few_samples_waits_instead_of_passing() -> None:
    alias, guard, hooks = FakeAlias(), FakeGuard(samples=3), FakeHooks()
    plan = RolloutPlan.canary(0.1, interval_seconds=0, min_samples=100)
    state = _run(
        plan, alias, guard, hooks, [timedelta(0), timedelta(seconds=5), timedelta(seconds=10)]
    )
    assert state.status == "running"
    assert alias.routing.shares() == {"1": 0.9, "2": 0.1}
    waits = [e for e in state.history if e.action == "wait"]
    assert len(waits) == 1  # repeated identical waits are recorded once
    assert "3 of 100 challenger requests" in waits[0].reason


def test_an_outside_change_aborts_and_touches_nothing() -> None:
    alias, guard, hooks = FakeAlias(), FakeGuard(), FakeHooks()
    state = _run(RolloutPlan.linear(0.25, 0), alias, guard, hooks, [timedelta(0)])
    alias.routing = AliasRouting("live", "1", {"2": 0.5}, "someone-else")
    state = controller.tick(
        state, alias=alias, guard=guard, hooks=hooks, now=T0 + timedelta(seconds=1)
    )
    assert state.status == "aborted"
    assert "changed outside the controller" in state.history[-1].reason
    assert alias.routing.revision_id == "someone-else"
    assert hooks.events == []


def test_ab_holds_until_stopped() -> None:
    alias, guard, hooks = FakeAlias(), FakeGuard(), FakeHooks()
    state = _run(
        RolloutPlan.ab(0.5),
        alias,
        guard,
        hooks,
        [timedelta(0), timedelta(seconds=1), timedelta(seconds=2)],
    )
    assert state.status == "holding"
    assert alias.routing.shares() == {"1": 0.5, "2": 0.5}
    state = controller.rollback(
        state, alias=alias, hooks=hooks, now=T0 + timedelta(seconds=3), reason="A/B test stopped"
    )
    assert state.status == "rolled_back" and alias.routing.shares() == {"1": 1.0}


def test_all_at_once_promotes_on_the_first_clear_tick() -> None:
    alias, guard, hooks = FakeAlias(), FakeGuard(samples=0), FakeHooks()
    state = _run(RolloutPlan.all_at_once(), alias, guard, hooks, [timedelta(0)])
    assert state.status == "promoted" and alias.routing.shares() == {"2": 1.0}


def test_all_at_once_with_min_samples_moves_traffic_but_waits_for_them_to_promote() -> None:
    alias, guard, hooks = FakeAlias(), FakeGuard(samples=0), FakeHooks()
    state = _run(RolloutPlan.all_at_once(min_samples=50), alias, guard, hooks, [timedelta(0)])
    assert state.status == "running" and alias.routing.shares() == {"2": 1.0}
    assert hooks.events == []

    state = controller.tick(state, alias=alias, guard=guard, hooks=hooks, now=T0)
    assert state.status == "running" and "0 of 50 challenger requests" in state.history[-1].reason

    guard.samples = 50
    state = controller.tick(state, alias=alias, guard=guard, hooks=hooks, now=T0)
    assert state.status == "promoted" and hooks.events == ["promoted"]
    assert alias.routing.shares() == {"2": 1.0}


def test_all_at_once_still_rolls_back_on_an_alarm_before_promotion() -> None:
    alias, guard, hooks = FakeAlias(), FakeGuard(samples=0), FakeHooks()
    state = _run(RolloutPlan.all_at_once(min_samples=50), alias, guard, hooks, [timedelta(0)])
    guard.alarms = ("challenger 5XX rate",)

    state = controller.tick(state, alias=alias, guard=guard, hooks=hooks, now=T0)

    assert state.status == "rolled_back" and alias.routing.shares() == {"1": 1.0}


def test_start_refuses_what_cannot_be_rolled_out() -> None:
    alias = FakeAlias()
    with pytest.raises(RolloutError, match="not published"):
        controller.start(
            model_name="churn",
            function_name="predict",
            champion=CHAMPION,
            challenger=CHALLENGER,
            plan=RolloutPlan.all_at_once(),
            alias=alias,
            published={"1"},
            now=T0,
        )
    alias.routing = AliasRouting("live", "1", {"2": 0.2}, "r9")
    with pytest.raises(RolloutError, match="not 100% to the champion"):
        _start(RolloutPlan.all_at_once(), alias)
    state = _run(RolloutPlan.all_at_once(), FakeAlias(), FakeGuard(), FakeHooks(), [timedelta(0)])
    with pytest.raises(RolloutError, match=r"the rollout was promoted: .* roll out v1"):
        controller.rollback(state, alias=FakeAlias(), hooks=FakeHooks(), now=T0)


def test_state_survives_a_json_round_trip_and_resumes() -> None:
    alias, guard, hooks = FakeAlias(), FakeGuard(), FakeHooks()
    state = _run(
        RolloutPlan.linear(0.25, 0), alias, guard, hooks, [timedelta(0), timedelta(seconds=1)]
    )
    reloaded = RolloutState.model_validate_json(state.model_dump_json())
    assert reloaded == state
    resumed = controller.tick(
        reloaded, alias=alias, guard=guard, hooks=hooks, now=T0 + timedelta(seconds=2)
    )
    assert resumed.weight == 0.75


# --- crash safety: intent saved under If-Match, then the alias, then the confirmation ----------


class Crash(Exception):
    """The process dies here."""


class EtagStore:
    """A state store with S3's conditional writes: each controller saves only over what it
    loaded (If-Match), as S3RolloutState does."""

    def __init__(self) -> None:
        self.saved: RolloutState | None = None
        self.version = 0

    def controller(self) -> EtagClient:
        return EtagClient(self)


class EtagClient:
    def __init__(self, store: EtagStore) -> None:
        self.store = store
        self.seen = store.version

    def load(self) -> RolloutState:
        assert self.store.saved is not None
        self.seen = self.store.version
        return self.store.saved

    def save(self, state: RolloutState) -> None:
        if self.store.version != self.seen:
            raise TransientRolloutError("another controller advanced this rollout")
        self.store.version += 1
        self.seen = self.store.version
        self.store.saved = state


class CrashingAlias(FakeAlias):
    """Dies before or after its next write."""

    def __init__(self, when: str) -> None:
        super().__init__()
        self.when = when

    def route(
        self, version: str, additional: dict[str, float], expected_revision: str
    ) -> AliasRouting:
        if self.when == "before":
            self.when = ""
            raise Crash
        written = super().route(version, additional, expected_revision)
        if self.when == "after":
            self.when = ""
            raise Crash
        return written


def _crashed(plan: RolloutPlan, when: str, ticks: int = 1) -> tuple[EtagStore, CrashingAlias]:
    """A rollout whose controller died around the alias write of its ``ticks``-th tick."""
    store, alias = EtagStore(), CrashingAlias("")
    client = store.controller()
    client.save(_start(plan, alias))
    for tick in range(ticks):
        if tick == ticks - 1:
            alias.when = when
        with pytest.raises(Crash) if tick == ticks - 1 else contextlib.nullcontext():
            state = controller.tick(
                client.load(),
                alias=alias,
                guard=FakeGuard(),
                hooks=FakeHooks(),
                now=T0 + timedelta(seconds=61 * tick),
                journal=client.save,
            )
            client.save(state)
    return store, alias


def _resume(store: EtagStore, alias: FakeAlias, hooks: FakeHooks, seconds: int) -> RolloutState:
    """The next controller's tick, from what the crashed one left in the store."""
    client = store.controller()
    return controller.tick(
        client.load(),
        alias=alias,
        guard=FakeGuard(),
        hooks=hooks,
        now=T0 + timedelta(seconds=seconds),
        journal=client.save,
    )


def test_a_crash_before_the_alias_write_leaves_an_intent_the_next_tick_drops() -> None:
    store, alias = _crashed(RolloutPlan.canary(0.1, interval_seconds=60), "before")
    assert store.saved is not None and store.saved.pending is not None  # the intent, durable
    assert store.saved.pending.routing == {"1": 0.9, "2": 0.1}
    assert alias.routing.shares() == {"1": 1.0}  # nothing moved

    state = _resume(store, alias, FakeHooks(), seconds=0)

    assert (state.status, state.step, state.pending) == ("running", 0, None)
    assert alias.routing.shares() == {"1": 0.9, "2": 0.1}
    assert [e.action for e in state.history] == ["start", "shift"]


def test_a_crash_after_the_alias_write_is_finished_by_the_next_tick_not_aborted() -> None:
    """Before: the alias served 90/10 while the state said 100% champion; resume aborted and
    nothing recovered. Now the recorded intent matches the alias, so the shift is confirmed."""
    store, alias = _crashed(RolloutPlan.canary(0.1, interval_seconds=60), "after")
    assert alias.routing.shares() == {"1": 0.9, "2": 0.1}
    assert store.saved is not None and store.saved.routing == {"1": 1.0}

    state = _resume(store, alias, FakeHooks(), seconds=5)

    assert state.status == "running" and state.routing == {"1": 0.9, "2": 0.1}
    assert state.pending is None and state.step == 0
    assert [e.action for e in state.history] == ["start", "shift", "wait"]
    assert alias.writes == 1  # confirmed, not written again


def test_a_promotion_that_crashed_before_its_save_calls_the_registry_hook_again() -> None:
    store, alias = _crashed(RolloutPlan.canary(0.1, interval_seconds=60), "after", ticks=2)
    assert alias.routing.shares() == {"2": 1.0}
    assert store.saved is not None and store.saved.status == "running"

    hooks = FakeHooks()
    state = _resume(store, alias, hooks, seconds=200)

    assert state.status == "promoted" and state.routing == {"2": 1.0}
    assert hooks.events == ["promoted"]  # the MLflow champion moves (idempotently) now


def test_a_second_controller_that_lost_the_race_writes_nothing() -> None:
    """Two controllers load the same state. The second ticks while the first is between its
    recorded intent and its alias write: its own intent is refused (If-Match), so it never
    touches the alias; ticking again after the first finished, its save is refused too."""
    store, alias = EtagStore(), FakeAlias()
    first, second = store.controller(), store.controller()
    first.save(_start(RolloutPlan.canary(0.1, interval_seconds=60), alias))
    stale = second.load()
    raced: list[type[Exception]] = []

    def journal_then_race(state: RolloutState) -> None:
        first.save(state)
        try:
            controller.tick(
                stale,
                alias=alias,
                guard=FakeGuard(),
                hooks=FakeHooks(),
                now=T0,
                journal=second.save,
            )
        except TransientRolloutError as exc:
            raced.append(type(exc))

    state = controller.tick(
        first.load(),
        alias=alias,
        guard=FakeGuard(),
        hooks=FakeHooks(),
        now=T0,
        journal=journal_then_race,
    )
    first.save(state)

    assert raced == [TransientRolloutError] and alias.writes == 1
    late = controller.tick(stale, alias=alias, guard=FakeGuard(), hooks=FakeHooks(), now=T0)
    with pytest.raises(TransientRolloutError):
        second.save(late)  # it saw the alias move under it; its abort is not saved either
    assert store.saved == state  # a retry of the second loads this and carries on


def test_rollback_returns_an_aborted_split_to_the_champion() -> None:
    """Before: an aborted rollout left at 90/10 could not be rolled back ("already aborted"),
    and start refused; no command recovered it."""
    alias, hooks = FakeAlias(), FakeHooks()
    state = _run(RolloutPlan.canary(0.1, 60), alias, FakeGuard(), hooks, [timedelta(0)])
    alias.routing = AliasRouting("live", "1", {"2": 0.3}, "r-by-hand")  # someone else's change
    state = controller.tick(state, alias=alias, guard=FakeGuard(), hooks=hooks, now=T0)
    assert state.status == "aborted" and alias.routing.shares() == {"1": 0.7, "2": 0.3}

    state = controller.rollback(state, alias=alias, hooks=hooks, now=T0, reason="by hand")

    assert state.status == "rolled_back" and alias.routing.shares() == {"1": 1.0}
    assert "the rollout was aborted, but the alias routed {'1': 0.7, '2': 0.3}" in (
        state.history[-1].reason
    )
    with pytest.raises(RolloutError, match="already rolled_back and the live alias serves 100%"):
        controller.rollback(state, alias=alias, hooks=hooks, now=T0)
    assert _start(RolloutPlan.canary(0.1, 60), alias).status == "running"  # start works again


def test_a_clock_reading_a_fraction_behind_the_step_start_does_not_hold_a_zero_interval() -> None:
    """S3's Date has one-second resolution: the next controller's "now" can read up to a
    second before the step start the previous one recorded (Date + its monotonic time). An
    interval of 0 must not wait on that (the README's AWS walkthrough failed so under load)."""
    alias, guard, hooks = FakeAlias(), FakeGuard(), FakeHooks()
    plan = RolloutPlan.canary(0.1, interval_seconds=0, min_samples=0)
    state = _run(plan, alias, guard, hooks, [timedelta(0)])
    assert alias.routing.shares() == {"1": 0.9, "2": 0.1}
    state = controller.tick(
        state, alias=alias, guard=guard, hooks=hooks, now=T0 - timedelta(seconds=0.6)
    )
    assert state.status == "promoted", [e.reason for e in state.history]
    assert all(b.at >= a.at for a, b in zip(state.history, state.history[1:], strict=False))
