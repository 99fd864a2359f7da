"""The rollout controller on its AWS backends, against moto's server on 127.0.0.1.

``LambdaAlias`` routes a real (moto) ``live`` alias, ``CloudWatchGuard`` creates and reads real
(moto) alarms and metrics, ``S3RolloutState`` keeps the state in a versioned bucket; the
controller's ``start``/``tick`` drive them with an explicit clock.

What moto does and Lambda/CloudWatch/S3 do differently, as found here:

- Lambda: ``UpdateAlias`` ignores ``RevisionId`` and never changes the alias's ``RevisionId``, so
  a stale-revision write is shown through a stubbed client; the controller's own check (the alias
  still routes as it left it) is what aborts on an out-of-band change here.
- CloudWatch: ``PutMetricAlarm`` on an existing alarm resets its state to ``OK`` (CloudWatch keeps
  the state), and a new alarm starts ``OK`` (CloudWatch: ``INSUFFICIENT_DATA``); alarms are never
  evaluated against metrics, so ``SetAlarmState`` stands in for a breach. ``GetMetricStatistics``
  honours dimensions but matches a datum whose dimensions are a superset of the query's
  (CloudWatch wants the exact set) and does not round ``StartTime`` down to the period.
- S3: ``PutObject`` honours ``If-Match`` and ``If-None-Match: *`` (412 ``PreconditionFailed``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from lambdaserve.aws.clients import aws_client
from lambdaserve.aws.cloudwatch_guard import CloudWatchGuard, statistics_period
from lambdaserve.aws.guard_alarms import AwsGuardPolicy
from lambdaserve.aws.lambda_alias import LambdaAlias
from lambdaserve.aws.lambda_publisher import LambdaPublisher
from lambdaserve.aws.s3_rollout_state import S3RolloutState
from lambdaserve.kernel.errors import FunctionConflictError, FunctionError, RolloutError
from lambdaserve.kernel.function_versions import AliasRouting
from lambdaserve.rollout import controller
from lambdaserve.rollout.plan import RolloutPlan
from lambdaserve.rollout.state import RolloutState, VersionRef
from lambdaserve.rollout.step import RecordingHooks as StepHooks
from lambdaserve.rollout.step import run_step
from tests.integration.moto_server import (
    handler_zip,
    lambda_role,
    new_bucket,
    object_versions,
    running_moto_server,
)
from tests.support.fakes import FakeHooks

pytestmark = pytest.mark.integration

MODEL = "churn"
CHAMPION = VersionRef(model_version="3", function_version="1")
CHALLENGER = VersionRef(model_version="4", function_version="2")
BUNDLE_VERSIONS = {"3": "1", "4": "2"}  # registry version -> bundle manifest version
# CloudWatch refuses datapoints far in the future: the fake clock starts half an hour ago.
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with running_moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def lambda_client(endpoint: str) -> Any:
    return aws_client("lambda", endpoint_url=endpoint)


@pytest.fixture(scope="module")
def cloudwatch(endpoint: str) -> Any:
    return aws_client("cloudwatch", endpoint_url=endpoint)


@pytest.fixture(scope="module")
def s3(endpoint: str) -> Any:
    return aws_client("s3", endpoint_url=endpoint)


@pytest.fixture(scope="module")
def role_arn(endpoint: str) -> str:
    return lambda_role(aws_client("iam", endpoint_url=endpoint), "lambdaserve-rollout")


@pytest.fixture
def function_name(lambda_client: Any, role_arn: str) -> str:
    """A function with v1 (champion) and v2 (challenger) published and ``live`` -> v1."""
    name = f"lambdaserve-predict-{uuid.uuid4().hex[:8]}"
    lambda_client.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role_arn,
        Handler="handler.lambda_handler",
        Code={"ZipFile": handler_zip()},
    )
    publisher = LambdaPublisher(name, client=lambda_client, waiter_delay=0.01)
    for digit in "12":
        publisher.publish(
            bundle_uri=f"s3://artifacts/models/{MODEL}/{digit}/bundle.tar.gz",
            bundle_sha256=digit * 64,
            description=f"{MODEL} {digit}",
        )
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    return name


class CountingClient:
    """A client that counts the calls of each operation."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith(("get_", "meta")):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return attribute(*args, **kwargs)

        return call


@dataclass
class Rig:
    """The AWS adapters of one controller process."""

    function: str
    alias: LambdaAlias
    guard: CloudWatchGuard
    hooks: FakeHooks

    def start(self, plan: RolloutPlan, now: datetime = T0) -> RolloutState:
        return controller.start(
            model_name=MODEL,
            function_name=self.function,
            champion=CHAMPION,
            challenger=CHALLENGER,
            plan=plan,
            alias=self.alias,
            published=self.alias.published_versions(),
            now=now,
        )

    def tick(self, state: RolloutState, now: datetime) -> RolloutState:
        return controller.tick(state, alias=self.alias, guard=self.guard, hooks=self.hooks, now=now)


@pytest.fixture
def make_rig(function_name: str, lambda_client: Any, cloudwatch: Any) -> Callable[..., Rig]:
    def make(*, extra_alarm_names: tuple[str, ...] = (), cloudwatch_client: Any = None) -> Rig:
        guard = CloudWatchGuard(
            function_name,
            client=cloudwatch_client or cloudwatch,
            extra_alarm_names=extra_alarm_names,
            bundle_version_of=lambda state: BUNDLE_VERSIONS.get(state.challenger.model_version),
        )
        alias = LambdaAlias(function_name, client=lambda_client)
        return Rig(function_name, alias, guard, FakeHooks())

    return make


@pytest.fixture
def rig(make_rig: Callable[..., Rig]) -> Rig:
    return make_rig()


def routing(lambda_client: Any, name: str) -> tuple[str, dict[str, float]]:
    alias = lambda_client.get_alias(FunctionName=name, Name="live")
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return alias["FunctionVersion"], weights


def alarms(cloudwatch: Any, name: str) -> dict[str, dict[str, Any]]:
    prefix = f"{name}-v2-"
    found = cloudwatch.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
    return {alarm["AlarmName"].removeprefix(prefix): alarm for alarm in found}


def invocations(cloudwatch: Any, name: str, value: float, when: datetime, **dims: str) -> None:
    dimensions = {"FunctionName": name, "Resource": f"{name}:live", **dims}
    cloudwatch.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                "Timestamp": when,
                "Value": value,
                "Unit": "Count",
            }
        ],
    )


# --- the rollout, end to end -----------------------------------------------------------------


def test_the_first_tick_shifts_the_alias_to_the_canary_weight(rig: Rig, lambda_client: Any) -> None:
    state = rig.start(RolloutPlan.canary(0.1, interval_seconds=0, min_samples=0))
    assert routing(lambda_client, rig.function) == ("1", {})

    state = rig.tick(state, at(1))

    assert routing(lambda_client, rig.function) == ("1", {"2": 0.1})
    assert (state.status, state.step, state.routing) == ("running", 0, {"1": 0.9, "2": 0.1})
    assert rig.alias.read().shares() == pytest.approx({"1": 0.9, "2": 0.1})


def test_the_guard_creates_the_challenger_alarms_once(
    make_rig: Callable[..., Rig], cloudwatch: Any
) -> None:
    counting = CountingClient(cloudwatch)
    rig = make_rig(cloudwatch_client=counting)
    state = rig.tick(rig.start(RolloutPlan.canary(0.1, 0, min_samples=1000)), at(1))

    state = rig.tick(state, at(2))  # the first tick after a shift evaluates the guard
    state = rig.tick(state, at(3))

    found = alarms(cloudwatch, rig.function)
    assert sorted(found) == ["client-error-rate", "errors", "p99", "server-errors"]
    by_version = [
        {"Name": "ExecutedVersion", "Value": "2"},
        {"Name": "FunctionName", "Value": rig.function},
        {"Name": "Resource", "Value": f"{rig.function}:live"},
    ]
    assert sorted(found["errors"]["Dimensions"], key=lambda d: d["Name"]) == by_version
    assert (found["errors"]["Namespace"], found["errors"]["Statistic"]) == ("AWS/Lambda", "Sum")
    assert (found["p99"]["MetricName"], found["p99"]["ExtendedStatistic"]) == ("Duration", "p99")
    assert found["p99"]["Threshold"] == AwsGuardPolicy().p99_ms
    emf = found["server-errors"]
    assert (emf["Namespace"], emf["MetricName"]) == ("lambdaserve", "ServerErrors")
    assert {d["Name"]: d["Value"] for d in emf["Dimensions"]} == {
        "service": "predict",
        "model_name": MODEL,
        "model_version": "2",  # the bundle's manifest version, not registry version 4
    }
    assert counting.calls["put_metric_alarm"] == 4  # the second evaluation put nothing
    assert state.status == "running"
    assert state.history[-1].reason.startswith("step 1: 0 of 1000 challenger requests")


def test_an_alarm_mid_rollout_rolls_the_alias_back_on_the_next_tick(
    rig: Rig, lambda_client: Any, cloudwatch: Any
) -> None:
    state = rig.start(RolloutPlan.linear(0.25, interval_seconds=0, min_samples=0))
    state = rig.tick(state, at(1))
    state = rig.tick(state, at(2))
    assert routing(lambda_client, rig.function) == ("1", {"2": 0.5})
    p99 = f"{rig.function}-v2-p99"
    cloudwatch.set_alarm_state(
        AlarmName=p99, StateValue="ALARM", StateReason="Threshold Crossed: 2 datapoints >= 1000"
    )

    state = rig.tick(state, at(3))

    assert state.status == "rolled_back"
    assert routing(lambda_client, rig.function) == ("1", {})
    [(rolled_back, reason)] = rig.hooks.rollbacks
    assert rolled_back == state
    assert p99 in reason
    assert "Threshold Crossed" in reason
    assert state.history[-1].action == "rollback"
    assert rig.hooks.promoted_states == []


def test_a_clean_rollout_promotes_the_challenger(rig: Rig, lambda_client: Any) -> None:
    state = rig.start(RolloutPlan.canary(0.1, interval_seconds=0, min_samples=0))

    for minute in (1, 2):
        state = rig.tick(state, at(minute))

    assert state.status == "promoted"
    assert routing(lambda_client, rig.function) == ("2", {})
    assert rig.hooks.promoted_states == [state]
    assert [event.action for event in state.history] == ["start", "shift", "promote"]
    assert rig.tick(state, at(3)) == state  # a finished rollout never moves again


def test_a_step_waits_for_the_minimum_challenger_samples(
    rig: Rig, lambda_client: Any, cloudwatch: Any
) -> None:
    state = rig.tick(rig.start(RolloutPlan.canary(0.1, 0, min_samples=5)), at(1))
    state = rig.tick(state, at(2))
    assert state.history[-1].action == "wait"
    assert "0 of 5 challenger requests" in state.history[-1].reason

    # Traffic that is not the challenger's in this step: the champion, the alias as a whole,
    # and the challenger before the step started.
    invocations(cloudwatch, rig.function, 500, at(1.5), ExecutedVersion="1")
    invocations(cloudwatch, rig.function, 500, at(1.5))
    invocations(cloudwatch, rig.function, 500, at(0.5), ExecutedVersion="2")
    state = rig.tick(state, at(3))
    assert (state.status, state.history[-1].action) == ("running", "wait")
    assert routing(lambda_client, rig.function) == ("1", {"2": 0.1})

    invocations(cloudwatch, rig.function, 3, at(1.5), ExecutedVersion="2")
    invocations(cloudwatch, rig.function, 2, at(2.5), ExecutedVersion="2")
    assert rig.guard.challenger_samples(state, at(4)) == 5
    state = rig.tick(state, at(4))

    assert state.status == "promoted"
    assert state.history[-1].reason == "guards clear on 5 challenger requests"
    assert routing(lambda_client, rig.function) == ("2", {})


def test_an_alias_changed_outside_the_controller_aborts_and_stays_as_left(
    rig: Rig, lambda_client: Any
) -> None:
    state = rig.tick(rig.start(RolloutPlan.linear(0.25, 0, min_samples=0)), at(1))
    lambda_client.update_alias(
        FunctionName=rig.function,
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )

    state = rig.tick(state, at(2))

    assert state.status == "aborted"
    assert "changed outside the controller" in state.history[-1].reason
    assert routing(lambda_client, rig.function) == ("1", {"2": 0.5})
    assert rig.hooks.promoted_states == [] and rig.hooks.rollbacks == []


def test_a_reloaded_state_resumes_at_the_next_step(
    make_rig: Callable[..., Rig], lambda_client: Any, s3: Any
) -> None:
    bucket = new_bucket(s3)
    first, states = make_rig(), S3RolloutState(bucket, client=s3)
    assert states.load(MODEL) is None
    state = first.start(RolloutPlan.linear(0.25, interval_seconds=0, min_samples=0))
    states.save(state)
    for minute in (1, 2):
        state = first.tick(state, at(minute))
        states.save(state)
    assert routing(lambda_client, first.function) == ("1", {"2": 0.5})

    second, reloaded_states = make_rig(), S3RolloutState(bucket, client=s3)  # a new process
    reloaded = reloaded_states.load(MODEL)
    assert reloaded == state
    resumed = second.tick(reloaded, at(3))
    reloaded_states.save(resumed)

    assert (resumed.step, resumed.routing) == (2, {"1": 0.25, "2": 0.75})
    assert routing(lambda_client, first.function) == ("1", {"2": 0.75})
    assert S3RolloutState(bucket, client=s3).load(MODEL) == resumed
    assert [key for key, _ in object_versions(s3, bucket)] == ["rollouts/churn.json"] * 4


def _put_stack_alarm(cloudwatch: Any, function_name: str) -> str:
    """The serving stack's alias errors alarm, as the stack creates it."""
    name = f"{function_name}-AliasErrors"
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Dimensions=[
            {"Name": "FunctionName", "Value": function_name},
            {"Name": "Resource", "Value": f"{function_name}:live"},
        ],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    return name


def test_all_at_once_checks_the_serving_stack_alarms_before_any_shift(
    make_rig: Callable[..., Rig], lambda_client: Any, cloudwatch: Any, function_name: str
) -> None:
    stack_alarm = _put_stack_alarm(cloudwatch, function_name)
    cloudwatch.set_alarm_state(AlarmName=stack_alarm, StateValue="ALARM", StateReason="errors")
    rig = make_rig(extra_alarm_names=(stack_alarm,))

    state = rig.tick(rig.start(RolloutPlan.all_at_once()), at(1))

    assert state.status == "rolled_back"
    assert stack_alarm in rig.hooks.rollbacks[0][1]
    assert routing(lambda_client, function_name) == ("1", {})


def test_a_promoted_rollout_deletes_the_challengers_alarms(
    rig: Rig, lambda_client: Any, cloudwatch: Any
) -> None:
    state = rig.tick(rig.start(RolloutPlan.canary(0.1, interval_seconds=0, min_samples=0)), at(1))
    assert sorted(alarms(cloudwatch, rig.function)) == [
        "client-error-rate",
        "errors",
        "p99",
        "server-errors",
    ]

    state = rig.tick(state, at(2))

    assert state.status == "promoted"
    assert alarms(cloudwatch, rig.function) == {}
    assert rig.tick(state, at(3)) == state  # finished: nothing is created again


def test_a_rolled_back_rollout_deletes_the_challengers_alarms_and_keeps_the_stacks(
    make_rig: Callable[..., Rig], cloudwatch: Any, function_name: str
) -> None:
    stack_alarm = _put_stack_alarm(cloudwatch, function_name)
    rig = make_rig(extra_alarm_names=(stack_alarm,))
    state = rig.tick(rig.start(RolloutPlan.linear(0.25, interval_seconds=0, min_samples=0)), at(1))
    cloudwatch.set_alarm_state(
        AlarmName=f"{function_name}-v2-errors", StateValue="ALARM", StateReason="errors"
    )

    state = rig.tick(state, at(2))

    assert state.status == "rolled_back"
    assert alarms(cloudwatch, function_name) == {}
    names = [a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]]
    assert stack_alarm in names  # the serving stack's alarm is read, never deleted


def test_release_deletes_every_signal_once_and_only_after_the_rollout_ends(
    rig: Rig, cloudwatch: Any
) -> None:
    champion = CHAMPION.model_copy(update={"bundle_version": "1"})
    running = rig.start(RolloutPlan.canary(0.1, 0, min_samples=0)).model_copy(
        update={"champion": champion}
    )
    rig.guard.ensure_alarms(running)
    assert sorted(alarms(cloudwatch, rig.function)) == [
        "client-error-rate",
        "errors",
        "p99",
        "score-shift",
        "server-errors",
    ]
    with pytest.raises(RolloutError, match="still needed"):
        rig.guard.release(running)
    assert len(alarms(cloudwatch, rig.function)) == 5

    aborted = running.model_copy(update={"status": "aborted"})
    rig.guard.release(aborted)
    rig.guard.release(aborted)  # idempotent: a crash after deleting releases again

    assert alarms(cloudwatch, rig.function) == {}


# --- the adapters' edges ---------------------------------------------------------------------


def test_two_controllers_cannot_both_save_the_same_rollout(rig: Rig, s3: Any) -> None:
    bucket = new_bucket(s3)
    state = rig.start(RolloutPlan.linear(0.25, 0, min_samples=0))
    ours, theirs = S3RolloutState(bucket, client=s3), S3RolloutState(bucket, client=s3)
    assert ours.load(MODEL) is None and theirs.load(MODEL) is None
    ours.save(state)
    with pytest.raises(RolloutError, match="another controller advanced this rollout"):
        theirs.save(state)  # both found no state; only the first create wins

    loaded_by_us, loaded_by_them = ours.load(MODEL), theirs.load(MODEL)
    assert loaded_by_us is not None and loaded_by_them is not None
    advanced = rig.tick(loaded_by_them, at(1))
    theirs.save(advanced)
    with pytest.raises(RolloutError, match="another controller advanced this rollout") as raised:
        ours.save(rig.tick(loaded_by_us, at(1)))

    assert isinstance(raised.value.__cause__, Exception)
    assert S3RolloutState(bucket, client=s3).load(MODEL) == advanced
    with pytest.raises(RolloutError, match="another controller advanced"):
        S3RolloutState(bucket, client=s3).save(advanced)  # never loaded: never overwrites
    s3.delete_object(Bucket=bucket, Key="rollouts/churn.json")
    with pytest.raises(RolloutError, match="or removed its state"):
        theirs.save(advanced)  # loaded, then deleted by someone else


class DiesAfterWriting:
    """The Lambda alias, through a controller that dies right after its write lands."""

    def __init__(self, alias: LambdaAlias) -> None:
        self.alias = alias

    def read(self) -> AliasRouting:
        return self.alias.read()

    def route(
        self, version: str, additional: dict[str, float], expected_revision: str
    ) -> AliasRouting:
        self.alias.route(version, additional, expected_revision)
        raise SystemExit("the rollout Lambda timed out")


def test_a_step_that_died_between_alias_and_state_is_finished_by_the_next(
    rig: Rig, s3: Any, lambda_client: Any
) -> None:
    """On moto: the alias at 90/10 while S3 said 100% champion used to abort the rollout, and
    neither resume, rollback nor start recovered it. The intent saved under If-Match first
    lets the next step confirm the shift; rollback then always returns the alias."""
    bucket = new_bucket(s3)
    S3RolloutState(bucket, client=s3).save(rig.start(RolloutPlan.canary(0.1, 60, min_samples=0)))

    with pytest.raises(SystemExit):
        run_step(
            MODEL,
            alias=DiesAfterWriting(rig.alias),
            guard=rig.guard,
            states=S3RolloutState(bucket, client=s3),
            hooks=StepHooks(),
            now=at(1),
        )
    assert routing(lambda_client, rig.function) == ("1", {"2": 0.1})
    left = S3RolloutState(bucket, client=s3).load(MODEL)
    assert left is not None and left.routing == {"1": 1.0} and left.pending is not None

    result = run_step(
        MODEL,
        alias=rig.alias,
        guard=rig.guard,
        states=S3RolloutState(bucket, client=s3),
        hooks=StepHooks(),
        now=at(1.5),
    )

    assert (result.status, result.weight) == ("running", 0.1)
    confirmed = S3RolloutState(bucket, client=s3).load(MODEL)
    assert confirmed is not None and confirmed.pending is None
    assert confirmed.routing == {"1": 0.9, "2": 0.1}
    assert [event.action for event in confirmed.history] == ["start", "shift", "wait"]

    states = S3RolloutState(bucket, client=s3)
    loaded = states.load(MODEL)
    assert loaded is not None
    done = controller.rollback(
        loaded, alias=rig.alias, hooks=rig.hooks, now=at(2), journal=states.save
    )
    states.save(done)
    assert routing(lambda_client, rig.function) == ("1", {})
    assert done.status == "rolled_back"


def test_a_state_that_is_not_a_rollout_is_refused(s3: Any) -> None:
    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="rollouts/churn.json", Body=b'{"model_name": "churn"}')

    with pytest.raises(RolloutError, match=r"rollouts/churn.json is not valid"):
        S3RolloutState(bucket, client=s3).load(MODEL)
    with pytest.raises(RolloutError, match="could not load rollout state"):
        S3RolloutState(f"{bucket}-missing", client=s3).load(MODEL)


def test_the_alias_lists_published_versions_and_names_what_is_missing(
    function_name: str, lambda_client: Any
) -> None:
    assert LambdaAlias(function_name, client=lambda_client).published_versions() == {"1", "2"}

    cases = [
        (LambdaAlias(function_name, "staging", client=lambda_client).read, "has no 'staging'"),
        (LambdaAlias("lambdaserve-missing", client=lambda_client).read, "was not found"),
        (
            LambdaAlias("lambdaserve-missing", client=lambda_client).published_versions,
            "lambdaserve-missing was not found",
        ),
    ]
    for operation, message in cases:
        with pytest.raises(FunctionError, match=message) as raised:
            operation()
        assert not isinstance(raised.value, FunctionConflictError)


def test_the_guard_refuses_to_judge_without_its_alarms(
    rig: Rig, make_rig: Callable[..., Rig]
) -> None:
    state = rig.tick(rig.start(RolloutPlan.canary(0.1, 0, min_samples=0)), at(1))
    blind = make_rig(extra_alarm_names=("lambdaserve-no-such-alarm",))

    with pytest.raises(RolloutError, match="lambdaserve-no-such-alarm"):
        blind.tick(state, at(2))
    other = state.model_copy(update={"function_name": "lambdaserve-other"})
    with pytest.raises(RolloutError, match="runs on lambdaserve-other"):
        rig.guard.evaluate(other, at(2))


@pytest.mark.parametrize(
    ("span", "age", "period"),
    [
        (timedelta(minutes=5), timedelta(minutes=5), 60),
        (timedelta(days=1), timedelta(days=1), 60),
        (timedelta(days=2), timedelta(days=2), 120),
        (timedelta(days=20), timedelta(days=20), 1200),
        (timedelta(hours=1), timedelta(days=30), 300),
        (timedelta(hours=1), timedelta(days=90), 3600),
    ],
)
def test_the_statistics_period_fits_cloudwatch_limits(
    span: timedelta, age: timedelta, period: int
) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    start = now - age
    assert statistics_period(start, start + span, now) == period


# --- stubbed: what Lambda does and moto does not ---------------------------------------------

NAME = "lambdaserve-predict"


def alias_response(version: str, weights: dict[str, float], revision: str) -> dict[str, Any]:
    return {
        "Name": "live",
        "FunctionVersion": version,
        "RoutingConfig": {"AdditionalVersionWeights": weights},
        "RevisionId": revision,
    }


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("lambda", endpoint_url="http://127.0.0.1:9")
    with Stubber(client) as stubber:
        yield client, stubber


def test_route_is_guarded_by_the_revision_and_read_back(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "update_alias",
        alias_response("1", {"2": 0.1}, "r2"),
        {
            "FunctionName": NAME,
            "Name": "live",
            "FunctionVersion": "1",
            "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1}},
            "RevisionId": "r1",
        },
    )
    stubber.add_response(
        "get_alias", alias_response("1", {"2": 0.1}, "r2"), {"FunctionName": NAME, "Name": "live"}
    )

    written = LambdaAlias(NAME, client=client).route("1", {"2": 0.1}, "r1")

    assert written == AliasRouting("live", "1", {"2": 0.1}, "r2")
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status"),
    [("PreconditionFailedException", 412), ("ResourceConflictException", 409)],
)
def test_a_stale_revision_is_a_conflict_that_changes_nothing(
    stubbed: tuple[Any, Stubber], code: str, status: int
) -> None:
    client, stubber = stubbed
    stubber.add_client_error("update_alias", service_error_code=code, http_status_code=status)

    with pytest.raises(FunctionConflictError, match="someone else changed alias 'live'") as e:
        LambdaAlias(NAME, client=client).route("2", {}, "stale")

    assert "the controller changed nothing" in str(e.value)
    assert code in str(e.value)
    stubber.assert_no_pending_responses()  # and no read-back was attempted


def test_a_rollback_that_loses_the_race_is_a_rollout_error(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response("get_alias", alias_response("1", {"2": 0.1}, "r1"))
    stubber.add_client_error(
        "update_alias", service_error_code="PreconditionFailedException", http_status_code=412
    )
    state = RolloutState(
        model_name=MODEL,
        function_name=NAME,
        champion=CHAMPION,
        challenger=CHALLENGER,
        plan=RolloutPlan.canary(0.1, 0, min_samples=0),
        step=0,
        step_started_at=T0,
        routing={"1": 0.9, "2": 0.1},
    )
    hooks = FakeHooks()

    with pytest.raises(RolloutError, match="rollback lost a race"):
        controller.rollback(state, alias=LambdaAlias(NAME, client=client), hooks=hooks, now=at(1))

    assert hooks.rollbacks == []


def test_a_guard_that_cannot_reach_cloudwatch_stops_the_rollout(rig: Rig) -> None:
    state = rig.tick(rig.start(RolloutPlan.canary(0.1, 0, min_samples=0)), at(1))
    unreachable = boto3.client(
        "cloudwatch",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=2),
    )
    guard = CloudWatchGuard(rig.function, client=unreachable)

    with pytest.raises(RolloutError, match="the rollout was not moved"):
        controller.tick(state, alias=rig.alias, guard=guard, hooks=rig.hooks, now=at(2))

    assert rig.alias.read().shares() == pytest.approx({"1": 0.9, "2": 0.1})
