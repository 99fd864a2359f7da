"""The unattended rollout step and its Lambda handler, with in-process fakes for the ports."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

import functions.rollout.handler as entry
from lambdaserve.aws.lambda_publisher import LambdaPublisher
from lambdaserve.kernel.errors import (
    FunctionError,
    RolloutError,
    TransientFunctionError,
    TransientRolloutError,
)
from lambdaserve.kernel.function_versions import PublishedVersion
from lambdaserve.rollout import controller
from lambdaserve.rollout.lambda_step import (
    LambdaHandler,
    RetryableStepError,
    RolloutPorts,
    build_handler,
)
from lambdaserve.rollout.plan import RolloutPlan
from lambdaserve.rollout.state import RolloutState, VersionRef
from lambdaserve.rollout.step import (
    MIN_WAIT_SECONDS,
    RecordingHooks,
    StepResult,
    run_step,
)
from lambdaserve.rollout.version_pruning import VersionPruning
from lambdaserve.wiring.aws_rollout import ModelTarget, RolloutSettings, rollout_ports
from tests.support.fakes import FakeAlias, FakeFunction, FakeGuard, MemoryStates
from tests.support.lambda_context import FakeLambdaContext

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
INTERVAL = 600
SETTINGS = RolloutSettings(
    model_targets={"churn": ModelTarget(function_name="lambdaserve-dev-predict")},
    state_bucket="artifacts",
)


CONTEXT = FakeLambdaContext.of(
    "lambdaserve-dev-rollout",
    memory_limit_in_mb=256,
    aws_request_id="0b5e9f2c-request",
    remaining_millis=60_000,
)


@dataclass
class Fakes:
    alias: FakeAlias
    guard: FakeGuard
    states: MemoryStates

    @property
    def ports(self) -> RolloutPorts:
        return RolloutPorts(alias=self.alias, guard=self.guard, states=self.states)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes(alias=FakeAlias(), guard=FakeGuard(), states=MemoryStates())


def _started(fakes: Fakes, plan: RolloutPlan) -> None:
    """What ``lambdaserve rollout start`` leaves in the durable store before the machine runs."""
    state = controller.start(
        model_name="churn",
        function_name=SETTINGS.model_targets["churn"].function_name,
        champion=VersionRef(model_version="1", function_version="1"),
        challenger=VersionRef(model_version="2", function_version="2"),
        plan=plan,
        alias=fakes.alias,
        published={"1", "2"},
        now=T0,
    )
    fakes.states.save(state)


def _step(fakes: Fakes, at: timedelta) -> StepResult:
    return run_step(
        "churn",
        alias=fakes.alias,
        guard=fakes.guard,
        states=fakes.states,
        hooks=RecordingHooks(),
        now=T0 + at,
    )


def test_a_canary_shifts_waits_out_its_interval_then_promotes(fakes: Fakes) -> None:
    _started(fakes, RolloutPlan.canary(0.1, interval_seconds=INTERVAL))

    first = _step(fakes, timedelta(seconds=5))
    assert (first.status, first.weight, first.finished) == ("running", 0.1, False)
    assert first.wait_seconds == INTERVAL
    assert fakes.alias.read().shares() == {"1": 0.9, "2": 0.1}

    early = _step(fakes, timedelta(seconds=5 + 200))
    assert (early.status, early.weight) == ("running", 0.1)
    assert early.wait_seconds == INTERVAL - 200

    done = _step(fakes, timedelta(seconds=5 + INTERVAL + 1))
    assert (done.status, done.weight, done.wait_seconds, done.finished) == (
        "promoted",
        1.0,
        0,
        True,
    )
    assert "guards clear" in done.reason
    assert fakes.alias.read().shares() == {"2": 1.0}
    saved = fakes.states.load("churn")
    assert saved is not None and saved.status == "promoted"
    assert [e.action for e in saved.history] == ["start", "shift", "wait", "promote", "promote"]
    registry_note = saved.history[-1].reason
    assert "registry not updated" in registry_note and "champion alias moves to v2" in registry_note


def test_an_alarm_rolls_back_and_finishes(fakes: Fakes) -> None:
    _started(fakes, RolloutPlan.linear(0.25, interval_seconds=INTERVAL))
    _step(fakes, timedelta(0))
    fakes.guard.alarms = ("5XX rate 30% > 2%",)

    result = _step(fakes, timedelta(seconds=60))

    assert (result.status, result.weight, result.wait_seconds, result.finished) == (
        "rolled_back",
        0.0,
        0,
        True,
    )
    assert result.reason == "guard alarm: 5XX rate 30% > 2%"
    assert fakes.alias.read().shares() == {"1": 1.0}
    saved = fakes.states.load("churn")
    assert saved is not None
    assert [e.action for e in saved.history][-2:] == ["rollback", "rollback"]
    assert "tagged rolled_back" in saved.history[-1].reason


def test_too_few_samples_polls_at_the_minimum_wait(fakes: Fakes) -> None:
    _started(fakes, RolloutPlan.canary(0.1, interval_seconds=60, min_samples=100))
    _step(fakes, timedelta(0))
    fakes.guard.samples = 3

    result = _step(fakes, timedelta(seconds=61))

    assert (result.status, result.wait_seconds, result.finished) == (
        "running",
        MIN_WAIT_SECONDS,
        False,
    )
    assert "3 of 100 challenger requests" in result.reason


def test_an_ab_split_on_hold_keeps_being_guarded(fakes: Fakes) -> None:
    _started(fakes, RolloutPlan.ab(0.5, min_samples=10))
    _step(fakes, timedelta(0))

    result = _step(fakes, timedelta(seconds=60))

    assert (result.status, result.weight, result.finished, result.wait_seconds) == (
        "holding",
        0.5,
        False,
        MIN_WAIT_SECONDS,
    )
    # The state machine keeps stepping a held split: an alarm still rolls it back.
    fakes.guard.alarms = ("errors 12 > 5",)
    after = _step(fakes, timedelta(seconds=90))
    assert (after.status, after.weight, after.finished) == ("rolled_back", 0.0, True)
    assert after.reason == "guard alarm: errors 12 > 5"


def test_a_finished_rollout_is_reported_by_its_decision_and_not_saved_again(
    fakes: Fakes,
) -> None:
    _started(fakes, RolloutPlan.linear(0.5, interval_seconds=60))
    _step(fakes, timedelta(0))
    fakes.guard.alarms = ("p99 latency 900 ms > 3.0x champion 40 ms",)
    first = _step(fakes, timedelta(seconds=10))
    saves = fakes.states.saves

    again = _step(fakes, timedelta(seconds=60))

    assert (again.status, again.finished, again.wait_seconds) == ("rolled_back", True, 0)
    assert again.reason == first.reason == "guard alarm: p99 latency 900 ms > 3.0x champion 40 ms"
    assert fakes.states.saves == saves


def test_all_at_once_promotes_on_the_first_step(fakes: Fakes) -> None:
    _started(fakes, RolloutPlan.all_at_once())

    result = _step(fakes, timedelta(0))

    assert (result.status, result.weight, result.finished) == ("promoted", 1.0, True)
    assert result.reason == "all-at-once: guards clear"


def test_without_a_started_rollout_the_step_refuses(fakes: Fakes) -> None:
    with pytest.raises(RolloutError, match="no rollout of churn has been started"):
        _step(fakes, timedelta(0))


def _handler(ports: RolloutPorts) -> LambdaHandler:
    return build_handler(ports, clock=lambda: T0)


def test_the_handler_answers_what_the_state_machine_reads(fakes: Fakes) -> None:
    _started(fakes, RolloutPlan.canary(0.1, interval_seconds=INTERVAL))

    output = _handler(fakes.ports)({"model_name": "churn"}, CONTEXT)

    assert output == {
        "model_name": "churn",
        "status": "running",
        "weight": 0.1,
        "wait_seconds": INTERVAL,
        "reason": "step 1/1: 10% to the challenger",
        "finished": False,
    }
    json.dumps(output)  # the Lambda payload is JSON


def test_the_entry_point_builds_its_ports_once_from_the_environment(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[RolloutSettings, str]] = []

    def factory(settings: RolloutSettings, model_name: str) -> RolloutPorts:
        seen.append((settings, model_name))
        return fakes.ports

    monkeypatch.setenv("MODEL_TARGETS", '{"churn": {"function_name": "lambdaserve-dev-predict"}}')
    monkeypatch.setenv("STATE_BUCKET", SETTINGS.state_bucket)
    monkeypatch.setattr(entry, "rollout_ports", factory)
    for cached in (entry._handler, entry._ports, entry._settings):
        cached.cache_clear()
    try:
        entry.lambda_handler({"model_name": "churn"}, CONTEXT)
        entry.lambda_handler({"model_name": "churn"}, CONTEXT)
    finally:
        for cached in (entry._handler, entry._ports, entry._settings):
            cached.cache_clear()
    assert seen == [(SETTINGS, "churn")]


def test_one_rollout_function_steps_each_model_on_its_own_ports_and_refuses_others(
    fakes: Fakes,
) -> None:
    """A stage's models share the rollout function: each event's model picks its adapters."""
    _started(fakes, RolloutPlan.canary(0.1, interval_seconds=INTERVAL))
    asked: list[str] = []

    def ports_for(model_name: str) -> RolloutPorts:
        asked.append(model_name)
        if model_name != "churn":
            return rollout_ports(SETTINGS, model_name)  # the real lookup refuses it
        return fakes.ports

    handler = build_handler(ports_for, clock=lambda: T0)
    assert handler({"model_name": "churn"}, CONTEXT)["status"] == "running"
    refused = handler({"model_name": "fraud"}, CONTEXT)
    assert refused["status"] == "error" and refused["finished"] is True
    assert refused["reason"] == "this stage serves no model 'fraud' (models: churn)"
    assert asked == ["churn", "fraud"]


def test_missing_state_is_an_error_result_with_a_clear_reason(fakes: Fakes) -> None:
    output = _handler(fakes.ports)({"model_name": "churn"}, CONTEXT)

    assert output["status"] == "error" and output["finished"] is True
    assert output["model_name"] == "churn"
    assert output["reason"].startswith("no rollout of churn has been started")
    assert "Traceback" not in json.dumps(output)


@pytest.mark.parametrize("event", [{}, {"model_name": ""}, {"model": "churn"}, ["churn"]])
def test_a_malformed_event_is_an_error_result(fakes: Fakes, event: Any) -> None:
    output = _handler(fakes.ports)(event, CONTEXT)

    assert output["status"] == "error" and output["finished"] is True
    assert output["reason"] == 'the event must be {"model_name": "<model name>"}'


@pytest.mark.parametrize(
    "failure",
    [
        TransientRolloutError("could not read the guard alarms: Throttling"),
        TransientFunctionError("could not read alias live: ServiceUnavailable"),
    ],
)
def test_a_transient_failure_is_raised_for_the_state_machine_to_retry(
    fakes: Fakes, failure: Exception
) -> None:
    _started(fakes, RolloutPlan.canary(0.1, interval_seconds=INTERVAL))

    class FlakyStates(MemoryStates):
        def load(self, model_name: str) -> RolloutState | None:
            raise failure

    flaky = RolloutPorts(alias=fakes.alias, guard=fakes.guard, states=FlakyStates())
    writes = fakes.alias.writes

    with pytest.raises(RetryableStepError, match=str(failure)):
        _handler(flaky)({"model_name": "churn"}, CONTEXT)
    assert fakes.alias.writes == writes


def test_an_unexpected_failure_names_the_request_and_never_the_stack(
    fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenStates(MemoryStates):
        def load(self, model_name: str) -> RolloutState | None:
            raise KeyError("boom")

    broken = RolloutPorts(alias=fakes.alias, guard=fakes.guard, states=BrokenStates())

    output = _handler(broken)({"model_name": "churn"}, CONTEXT)

    assert output["status"] == "error" and output["finished"] is True
    assert output["reason"] == (
        "unexpected error; see the rollout function's logs (0b5e9f2c-request)"
    )
    assert "boom" not in json.dumps(output) and "Traceback" not in json.dumps(output)
    (logged,) = [r for r in caplog.records if r.exc_info]  # the function's own logs have it
    assert logged.getMessage() == "rollout step failed unexpectedly"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "MODEL_TARGETS",
        '{"churn": {"function_name": "lambdaserve-dev-predict", "guard_alarm_names": ["a"]}}',
    )
    monkeypatch.setenv("STATE_BUCKET", "artifacts-bucket")
    monkeypatch.delenv("ALIAS_NAME", raising=False)
    monkeypatch.delenv("STATE_PREFIX", raising=False)

    settings = RolloutSettings()

    assert (settings.alias_name, settings.state_prefix) == ("live", "rollouts/")
    assert settings.state_bucket == "artifacts-bucket"
    assert settings.model_targets["churn"].function_name == "lambdaserve-dev-predict"
    assert settings.model_targets["churn"].guard_alarm_names == ("a",)


def _pruned_ports(fakes: Fakes, function: Any, keep: int = 1) -> RolloutPorts:
    return RolloutPorts(
        alias=fakes.alias,
        guard=fakes.guard,
        states=fakes.states,
        pruning=VersionPruning(function, "lambdaserve-dev-predict", keep),
    )


def _logged(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message]


def test_a_step_that_promotes_prunes_old_versions_by_routing_and_age(
    fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    _started(fakes, RolloutPlan.all_at_once())
    function = FakeFunction(fakes.alias, numbers=["1", "2", "3", "4"])

    output = _handler(_pruned_ports(fakes, function))({"model_name": "churn"}, CONTEXT)

    assert (output["status"], output["finished"]) == ("promoted", True)
    assert function.deleted == ["1", "3"], "kept: 2 (live routes it) and 4 (the newest)"
    (logged,) = _logged(caplog, "pruned old function versions")
    report = logged.prune_report  # type: ignore[attr-defined]
    assert [d["function_version"] for d in report["deleted"]] == ["1", "3"]
    assert [(k["function_version"], k["reasons"]) for k in report["kept"]] == [
        ("2", ["routed"]),
        ("4", ["newest"]),
    ]


def test_a_step_that_rolls_back_prunes_too(fakes: Fakes) -> None:
    _started(fakes, RolloutPlan.linear(0.25, interval_seconds=INTERVAL))
    function = FakeFunction(fakes.alias, numbers=["1", "2", "3", "4"])
    handler = _handler(_pruned_ports(fakes, function, keep=2))
    handler({"model_name": "churn"}, CONTEXT)
    assert function.deleted == [], "a running rollout prunes nothing"
    fakes.guard.alarms = ("errors 12 > 5",)

    output = handler({"model_name": "churn"}, CONTEXT)

    assert output["status"] == "rolled_back"
    assert function.deleted == ["2"], "kept: 1 (live again), 3 and 4 (the two newest)"


def test_without_keep_versions_a_finished_step_prunes_nothing(fakes: Fakes) -> None:
    _started(fakes, RolloutPlan.all_at_once())

    output = _handler(fakes.ports)({"model_name": "churn"}, CONTEXT)

    assert output["status"] == "promoted" and fakes.ports.pruning is None


def test_a_pruning_failure_is_logged_and_the_step_stands(
    fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    _started(fakes, RolloutPlan.all_at_once())
    denied = FunctionError("could not delete version 1 of Lambda function f: AccessDenied")
    function = FakeFunction(fakes.alias, numbers=["1", "2", "3"], failure=denied)

    output = _handler(_pruned_ports(fakes, function))({"model_name": "churn"}, CONTEXT)

    assert (output["status"], output["finished"]) == ("promoted", True)
    (warned,) = _logged(caplog, "pruning old function versions")
    assert "AccessDenied" in warned.reason  # type: ignore[attr-defined]
    assert function.deleted == []


def test_an_unexpected_pruning_failure_is_logged_and_the_step_stands(
    fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    _started(fakes, RolloutPlan.all_at_once())

    class Broken(FakeFunction):
        def versions(self) -> list[PublishedVersion]:
            raise KeyError("boom")

    output = _handler(_pruned_ports(fakes, Broken(fakes.alias)))({"model_name": "churn"}, CONTEXT)

    assert (output["status"], output["finished"]) == ("promoted", True)
    (logged,) = _logged(
        caplog, "pruning old function versions failed unexpectedly; the step stands"
    )
    assert logged.exc_info is not None


def test_keep_versions_comes_from_the_environment_and_wires_the_publisher(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODEL_TARGETS", '{"churn": {"function_name": "lambdaserve-dev-predict"}}')
    monkeypatch.setenv("STATE_BUCKET", "artifacts-bucket")
    monkeypatch.delenv("KEEP_VERSIONS", raising=False)
    assert RolloutSettings().keep_versions is None
    assert rollout_ports(RolloutSettings(), "churn").pruning is None

    monkeypatch.setenv("KEEP_VERSIONS", "3")
    pruning = rollout_ports(RolloutSettings(), "churn").pruning

    assert pruning is not None
    assert (pruning.function_name, pruning.keep, pruning.alias) == (
        "lambdaserve-dev-predict",
        3,
        "live",
    )
    assert isinstance(pruning.publisher, LambdaPublisher)
    assert pruning.publisher.function_name == "lambdaserve-dev-predict"
    monkeypatch.setenv("KEEP_VERSIONS", "0")
    with pytest.raises(ValidationError, match="keep_versions"):
        RolloutSettings()
