"""The kinds of CloudWatch alarm the rollout guard puts on a challenger, and their thresholds:
``AwsGuardPolicy``, a metric alarm (``AlarmSpec``) and the metric-math alarms against the
champion (``ScoreShiftSpec``, ``ClientErrorRateSpec``), each as its ``PutMetricAlarm``
parameters and whether a described alarm already matches them. No CloudWatch calls:
``aws.cloudwatch_guard`` picks a rollout's alarms, puts, reads and deletes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lambdaserve.kernel.metric_names import NAMESPACE, PredictMetric

EMF_NAMESPACE = NAMESPACE


class AwsGuardPolicy(BaseModel):
    """Thresholds of the challenger's alarms; an alarm fires at ``>=`` its threshold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    errors: int = Field(default=5, ge=1, description="Lambda Errors per period")
    p99_ms: float = Field(default=1000.0, gt=0.0, description="p99 Duration (ms)")
    server_errors: int = Field(default=5, ge=1, description="5XX responses per period")
    client_error_rate_increase: float = Field(
        default=0.05,
        gt=0.0,
        le=1.0,
        description="challenger's invalid-input (4XX) share of prediction requests minus the "
        "champion's, per period (as the local guard's max_invalid_rate_increase)",
    )
    client_error_min_requests: int = Field(
        default=20,
        ge=1,
        description="challenger prediction requests in a period before its 4XX share counts",
    )
    score_shift: float = Field(
        default=0.1,
        gt=0.0,
        le=1.0,
        description="|challenger mean score - champion mean score| per period",
    )
    period_seconds: int = Field(default=60, ge=10, le=86400)
    evaluation_periods: int = Field(default=2, ge=1, le=30)

    @field_validator("period_seconds")
    @classmethod
    def _cloudwatch_period(cls, value: int) -> int:
        if value not in (10, 30) and value % 60:
            raise ValueError("CloudWatch alarm periods are 10, 30 or a multiple of 60 seconds")
        return value


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    namespace: str
    metric: str
    dimensions: dict[str, str]
    statistic: str  # "Sum" or a percentile such as "p99"
    threshold: float

    def request(self, policy: AwsGuardPolicy) -> dict[str, Any]:
        """The ``PutMetricAlarm`` parameters."""
        statistic = "ExtendedStatistic" if self.statistic.startswith("p") else "Statistic"
        return {
            "AlarmName": self.name,
            "AlarmDescription": f"lambdaserve rollout guard: {self.metric} {self.statistic} "
            f">= {self.threshold:g}",
            "Namespace": self.namespace,
            "MetricName": self.metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(self.dimensions.items())],
            statistic: self.statistic,
            "Period": policy.period_seconds,
            "EvaluationPeriods": policy.evaluation_periods,
            "DatapointsToAlarm": policy.evaluation_periods,
            "Threshold": float(self.threshold),
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",  # a quiet canary is the min-sample rule's job
        }

    def matches(self, described: dict[str, Any], policy: AwsGuardPolicy) -> bool:
        """Whether an alarm as described already has this configuration."""
        wanted = self.request(policy)
        found = {key: described.get(key) for key in wanted if key != "AlarmDescription"}
        found["Dimensions"] = sorted(
            described.get("Dimensions") or [], key=lambda d: str(d.get("Name"))
        )
        found["Threshold"] = float(described.get("Threshold") or 0.0)
        return all(found[key] == wanted[key] for key in found)


def _metric_stat(
    id_: str, metric: str, dimensions: dict[str, str], period: int, stat: str
) -> dict[str, Any]:
    """One EMF metric of a metric-math alarm, not itself alarmed on."""
    return {
        "Id": id_,
        "ReturnData": False,
        "MetricStat": {
            "Metric": {
                "Namespace": EMF_NAMESPACE,
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dimensions.items())],
            },
            "Period": period,
            "Stat": stat,
        },
    }


class _MathAlarm:
    """A metric-math alarm of the challenger against the champion: subclasses give the
    metrics, the expression and its label; the alarm fires at ``>= threshold``."""

    name: str
    threshold: float
    namespace = EMF_NAMESPACE

    def describe(self) -> str:
        raise NotImplementedError

    def metrics(self, period: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def expression(self) -> tuple[str, str]:
        raise NotImplementedError

    def request(self, policy: AwsGuardPolicy) -> dict[str, Any]:
        """The ``PutMetricAlarm`` parameters."""
        expression, label = self.expression()
        return {
            "AlarmName": self.name,
            "AlarmDescription": f"lambdaserve rollout guard: {self.describe()}",
            "Metrics": [
                *self.metrics(policy.period_seconds),
                {"Id": "signal", "Expression": expression, "ReturnData": True, "Label": label},
            ],
            "EvaluationPeriods": policy.evaluation_periods,
            "DatapointsToAlarm": policy.evaluation_periods,
            "Threshold": float(self.threshold),
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
        }

    def matches(self, described: dict[str, Any], policy: AwsGuardPolicy) -> bool:
        """Whether an alarm as described already has this configuration."""
        wanted = self.request(policy)
        return bool(
            float(described.get("Threshold") or 0.0) == wanted["Threshold"]
            and described.get("Metrics") == wanted["Metrics"]
            and described.get("EvaluationPeriods") == wanted["EvaluationPeriods"]
        )


@dataclass(frozen=True)
class ScoreShiftSpec(_MathAlarm):
    """|mean score of the challenger - mean score of the champion| over the same periods (the
    predict function's EMF ``MeanScore``, one datapoint per request)."""

    name: str
    challenger: dict[str, str]
    champion: dict[str, str]
    threshold: float

    def describe(self) -> str:
        return f"|mean score shift| >= {self.threshold:g}"

    def metrics(self, period: int) -> list[dict[str, Any]]:
        return [
            _metric_stat(
                "challenger", PredictMetric.MEAN_SCORE, self.challenger, period, "Average"
            ),
            _metric_stat("champion", PredictMetric.MEAN_SCORE, self.champion, period, "Average"),
        ]

    def expression(self) -> tuple[str, str]:
        return "ABS(challenger - champion)", "mean score shift"


@dataclass(frozen=True)
class ClientErrorRateSpec(_MathAlarm):
    """The challenger's 4XX share of prediction requests minus the champion's, over the same
    periods (EMF ``ClientErrors`` over ``PredictionRequests``).

    A rate against the champion, not a count: one client sending bad bodies to every version
    raises both shares alike, and real volume does not trip it by noise. Periods where the
    challenger served fewer than ``min_requests`` predictions count as 0.
    """

    name: str
    challenger: dict[str, str]
    champion: dict[str, str] | None  # unknown bundle version: the challenger's share alone
    threshold: float
    min_requests: int

    def describe(self) -> str:
        return f"4XX share >= champion's + {self.threshold:g}"

    def metrics(self, period: int) -> list[dict[str, Any]]:
        found = [
            _metric_stat("err", PredictMetric.CLIENT_ERRORS, self.challenger, period, "Sum"),
            _metric_stat("req", PredictMetric.PREDICTION_REQUESTS, self.challenger, period, "Sum"),
        ]
        if self.champion is not None:
            found += [
                _metric_stat("base_err", PredictMetric.CLIENT_ERRORS, self.champion, period, "Sum"),
                _metric_stat(
                    "base_req", PredictMetric.PREDICTION_REQUESTS, self.champion, period, "Sum"
                ),
            ]
        return found

    def expression(self) -> tuple[str, str]:
        baseline = (
            "FILL(base_err, 0) / MAX([FILL(base_req, 0), 1])" if self.champion is not None else "0"
        )
        return (
            f"IF(FILL(req, 0) >= {self.min_requests}, FILL(err, 0) / FILL(req, 1) - {baseline}, 0)",
            "4XX share over the champion's",
        )


GuardAlarmSpec = AlarmSpec | ScoreShiftSpec | ClientErrorRateSpec
