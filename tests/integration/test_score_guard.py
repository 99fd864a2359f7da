"""The AWS guard's signals against the champion: metric-math alarms on the challenger's mean
score (EMF ``MeanScore``) and its 4XX share of predictions (``ClientErrors`` over
``PredictionRequests``) against the champion's, created per rollout and read like the others."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from lambdaserve.aws.clients import aws_client
from lambdaserve.aws.cloudwatch_guard import CloudWatchGuard
from lambdaserve.aws.guard_alarms import AwsGuardPolicy
from lambdaserve.rollout.plan import RolloutPlan
from lambdaserve.rollout.state import RolloutState, VersionRef
from tests.integration.moto_server import running_moto_server

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def cloudwatch() -> Iterator[object]:
    with running_moto_server() as endpoint:
        yield aws_client("cloudwatch", endpoint_url=endpoint)


def _state() -> RolloutState:
    return RolloutState(
        model_name="churn",
        function_name="predict-fn",
        champion=VersionRef(model_version="1", function_version="4", bundle_version="7"),
        challenger=VersionRef(model_version="2", function_version="5", bundle_version="8"),
        plan=RolloutPlan.canary(0.1, 60),
        step=0,
        step_started_at=NOW,
        routing={"4": 0.9, "5": 0.1},
    )


def test_the_score_shift_alarm_compares_both_bundle_versions(cloudwatch: object) -> None:
    guard = CloudWatchGuard("predict-fn", client=cloudwatch)
    names = guard.ensure_alarms(_state())
    name = "predict-fn-v5-score-shift"
    assert name in names
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]  # type: ignore[attr-defined]
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    assert metrics["signal"]["Expression"] == "ABS(challenger - champion)"
    versions = {
        key: {d["Name"]: d["Value"] for d in metrics[key]["MetricStat"]["Metric"]["Dimensions"]}
        for key in ("challenger", "champion")
    }
    assert versions["challenger"]["model_version"] == "8"
    assert versions["champion"]["model_version"] == "7"
    assert metrics["challenger"]["MetricStat"]["Metric"]["MetricName"] == "MeanScore"
    assert alarm["Threshold"] == guard.policy.score_shift


def test_a_firing_score_shift_alarm_is_reported_and_survives_re_evaluation(
    cloudwatch: object,
) -> None:
    guard = CloudWatchGuard("predict-fn", client=cloudwatch)
    guard.ensure_alarms(_state())
    name = "predict-fn-v5-score-shift"
    cloudwatch.set_alarm_state(  # type: ignore[attr-defined]
        AlarmName=name, StateValue="ALARM", StateReason="mean score moved by 0.3"
    )
    report = guard.evaluate(_state(), NOW)
    assert any(name in alarm for alarm in report.alarms)
    # evaluating again must not re-put (and so reset) the alarm
    assert any(name in alarm for alarm in guard.evaluate(_state(), NOW).alarms)


def test_the_client_error_alarm_is_a_share_against_the_champions() -> None:
    """A count (20 a minute) let one client with bad bodies roll back any canary; the share of
    4XX over prediction requests, minus the champion's, does not move when both see the flood."""
    spec = next(
        s
        for s in CloudWatchGuard("predict-fn").alarm_specs(_state())
        if s.name == "predict-fn-v5-client-error-rate"
    )
    request = spec.request(AwsGuardPolicy())
    metrics = {m["Id"]: m for m in request["Metrics"]}
    stats = {
        key: (
            metrics[key]["MetricStat"]["Metric"]["MetricName"],
            {d["Name"]: d["Value"] for d in metrics[key]["MetricStat"]["Metric"]["Dimensions"]}[
                "model_version"
            ],
            metrics[key]["MetricStat"]["Stat"],
        )
        for key in ("err", "req", "base_err", "base_req")
    }
    assert stats == {
        "err": ("ClientErrors", "8", "Sum"),
        "req": ("PredictionRequests", "8", "Sum"),
        "base_err": ("ClientErrors", "7", "Sum"),
        "base_req": ("PredictionRequests", "7", "Sum"),
    }
    assert metrics["signal"]["Expression"] == (
        "IF(FILL(req, 0) >= 20, FILL(err, 0) / FILL(req, 1) - "
        "FILL(base_err, 0) / MAX([FILL(base_req, 0), 1]), 0)"
    )
    assert request["Threshold"] == 0.05
    assert not any(
        s.name.endswith("-client-errors")
        for s in CloudWatchGuard("predict-fn").alarm_specs(_state())
    )


def test_the_client_error_alarm_is_created_and_read_like_the_others(cloudwatch: object) -> None:
    guard = CloudWatchGuard("predict-fn", client=cloudwatch)
    name = "predict-fn-v5-client-error-rate"
    assert name in guard.ensure_alarms(_state())
    cloudwatch.set_alarm_state(  # type: ignore[attr-defined]
        AlarmName=name, StateValue="ALARM", StateReason="4XX share 40% over the champion's 2%"
    )
    assert any(name in alarm for alarm in guard.evaluate(_state(), NOW).alarms)
