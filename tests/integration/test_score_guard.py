"""The AWS guard's score-distribution signal: a metric-math alarm on the challenger's mean
score against the champion's (EMF ``MeanScore``), created per rollout and read like the others."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from lambdaserve.aws.clients import aws_client
from lambdaserve.aws.cloudwatch_guard import CloudWatchGuard
from lambdaserve.core.rollout_plan import RolloutPlan
from lambdaserve.core.rollout_state import RolloutState, VersionRef
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
    name = "lambdaserve-predict-fn-v5-score-shift"
    assert name in names
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]  # type: ignore[attr-defined]
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    assert metrics["shift"]["Expression"] == "ABS(challenger - champion)"
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
    name = "lambdaserve-predict-fn-v5-score-shift"
    cloudwatch.set_alarm_state(  # type: ignore[attr-defined]
        AlarmName=name, StateValue="ALARM", StateReason="mean score moved by 0.3"
    )
    report = guard.evaluate(_state(), NOW)
    assert any(name in alarm for alarm in report.alarms)
    # evaluating again must not re-put (and so reset) the alarm
    assert any(name in alarm for alarm in guard.evaluate(_state(), NOW).alarms)
