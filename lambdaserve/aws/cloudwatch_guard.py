"""The AWS adapter of the rollout controller's ``GuardPort``: CloudWatch alarms on the challenger.

Each evaluation makes sure the challenger's alarms exist (created once, re-put only when the
policy changed, so an alarm keeps its state), reports every alarm in state ``ALARM`` (the
challenger's and any alarms of the serving stack named in ``extra_alarm_names``), and counts the
challenger's invocations since the step started for the minimum-sample rule. Once the rollout
is finished (promoted, rolled back or aborted) ``release`` deletes the challenger's alarms; they
carry no actions (the controller reads their state), which the rollout role enforces.

Alarms, named ``<function>-v<function version>-<signal>`` (the function's name carries the
stage's ``lambdaserve-<stage>`` prefix):

- ``errors`` and ``p99``: ``AWS/Lambda`` ``Errors`` (Sum) and ``Duration`` (p99) of the executed
  version behind the alias (dimensions ``FunctionName``, ``Resource=<function>:<alias>``,
  ``ExecutedVersion``).
- ``server-errors``: the predict function's EMF metric ``ServerErrors`` (5XX of predictions) in
  namespace ``lambdaserve``. Its dimensions are ``service=predict``, ``model_name`` and
  ``model_version`` where ``model_version`` is the bundle *manifest* version, which the rollout
  state carries as ``challenger.bundle_version`` (``bundle_version_of`` overrides it); without
  one the EMF alarms are not created.
- ``client-error-rate``: a metric-math alarm on the challenger's share of 4XX (invalid input)
  prediction requests minus the champion's (EMF ``ClientErrors`` / ``PredictionRequests``).

- ``score-shift``: a metric-math alarm on |challenger - champion| of the EMF ``MeanScore``
  (the mean positive-class probability of each request), keyed by both bundle versions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lambdaserve.aws.clients import aws_client, is_transient
from lambdaserve.kernel.errors import RolloutError, TransientRolloutError
from lambdaserve.kernel.function_versions import LIVE_ALIAS
from lambdaserve.kernel.metric_names import (
    MODEL_NAME,
    MODEL_VERSION,
    NAMESPACE,
    PREDICT_SERVICE,
    PredictMetric,
)
from lambdaserve.rollout.guard import GuardReport
from lambdaserve.rollout.state import RolloutState

LAMBDA_NAMESPACE = "AWS/Lambda"
EMF_NAMESPACE = NAMESPACE
EMF_SERVICE = PREDICT_SERVICE
_MAX_DATAPOINTS = 1440
#: The signal suffixes of the challenger's alarms (``<function>-v<version>-<signal>``).
ALARM_SIGNALS = ("errors", "p99", "server-errors", "client-error-rate", "score-shift")
_NAMES_PER_CALL = 100

BundleVersionOf = Callable[[RolloutState], str | None]


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


class CloudWatchGuard:
    """Guard a rollout of one Lambda function's alias with CloudWatch alarms.

    >>> guard = CloudWatchGuard(  # doctest: +SKIP
    ...     "lambdaserve-dev-predict", extra_alarm_names=["lambdaserve-dev-AliasErrors"]
    ... )
    >>> guard.evaluate(state, now).alarms  # doctest: +SKIP
    ()
    """

    def __init__(
        self,
        function_name: str,
        alias: str = LIVE_ALIAS,
        *,
        client: Any | None = None,
        policy: AwsGuardPolicy | None = None,
        extra_alarm_names: Sequence[str] = (),
        bundle_version_of: BundleVersionOf | None = None,
    ) -> None:
        self.function_name = function_name
        self.alias = alias
        self.policy = policy or AwsGuardPolicy()
        self.extra_alarm_names = tuple(extra_alarm_names)
        self._bundle_version_of = bundle_version_of
        self._client: Any = client if client is not None else aws_client("cloudwatch")

    def alarm_prefix(self, state: RolloutState) -> str:
        """``<function>-v<challenger version>``: every alarm this guard creates for the rollout
        starts with it (the function name carries the stage prefix; the rollout role may put
        and delete only alarms named ``<function>-v*``)."""
        return f"{self.function_name}-v{state.challenger.function_version}"

    def alarm_specs(self, state: RolloutState) -> list[GuardAlarmSpec]:
        """The challenger's alarms for this rollout."""
        self._check(state)
        p = self.policy
        version = state.challenger.function_version
        prefix = self.alarm_prefix(state)
        by_version = self.version_dimensions(version)
        specs: list[GuardAlarmSpec] = [
            AlarmSpec(f"{prefix}-errors", LAMBDA_NAMESPACE, "Errors", by_version, "Sum", p.errors),
            AlarmSpec(f"{prefix}-p99", LAMBDA_NAMESPACE, "Duration", by_version, "p99", p.p99_ms),
        ]
        bundle_version = (
            self._bundle_version_of(state)
            if self._bundle_version_of
            else state.challenger.bundle_version or None
        )
        if bundle_version:
            emf = {"service": EMF_SERVICE, MODEL_NAME: state.model_name}
            emf[MODEL_VERSION] = bundle_version
            specs.append(
                AlarmSpec(
                    f"{prefix}-server-errors",
                    EMF_NAMESPACE,
                    PredictMetric.SERVER_ERRORS,
                    emf,
                    "Sum",
                    p.server_errors,
                )
            )
            champion = (
                {**emf, MODEL_VERSION: state.champion.bundle_version}
                if state.champion.bundle_version
                else None
            )
            specs.append(
                ClientErrorRateSpec(
                    f"{prefix}-client-error-rate",
                    emf,
                    champion,
                    p.client_error_rate_increase,
                    p.client_error_min_requests,
                )
            )
            if champion is not None:
                specs.append(ScoreShiftSpec(f"{prefix}-score-shift", emf, champion, p.score_shift))
        return specs

    def version_dimensions(self, version: str) -> dict[str, str]:
        """Lambda's per-executed-version dimensions of invocations through the alias."""
        return {
            "FunctionName": self.function_name,
            "Resource": f"{self.function_name}:{self.alias}",
            "ExecutedVersion": version,
        }

    def ensure_alarms(self, state: RolloutState) -> tuple[str, ...]:
        """Create the challenger's missing alarms and update changed ones; return their names."""
        return self._ensure(self.alarm_specs(state))

    def _ensure(self, specs: list[GuardAlarmSpec]) -> tuple[str, ...]:
        described = self._describe([spec.name for spec in specs])
        with self._errors("create the challenger's alarms"):
            for spec in specs:
                current = described.get(spec.name)
                if current is None or not spec.matches(current, self.policy):
                    self._client.put_metric_alarm(**spec.request(self.policy))
        return tuple(spec.name for spec in specs)

    def evaluate(self, state: RolloutState, now: datetime) -> GuardReport:
        specs = self.alarm_specs(state)
        own = self._ensure(specs)
        names = (*own, *(n for n in self.extra_alarm_names if n not in own))
        described = self._describe(names)
        missing = [name for name in names if name not in described]
        if missing:
            raise RolloutError(
                f"guard alarms {missing} do not exist in CloudWatch; the rollout cannot be "
                "judged without them (check the alarm names passed to the guard)"
            )
        states = [described[name].get("StateValue", "") for name in names]
        firing = tuple(
            f"{name} is in ALARM ({str(described[name].get('StateReason', ''))[:200]})"
            for name, value in zip(names, states, strict=True)
            if value == "ALARM"
        )
        details = {
            "alarms_checked": float(len(names)),
            "alarms_insufficient_data": float(states.count("INSUFFICIENT_DATA")),
            "emf_alarms": float(sum(spec.namespace == EMF_NAMESPACE for spec in specs)),
        }
        return GuardReport(firing, self.challenger_samples(state, now), details)

    def release(self, state: RolloutState) -> None:
        """Delete the challenger's alarms once the rollout is finished (promoted, rolled back or
        aborted): nothing reads them afterwards, and they carry no actions. Every signal's name
        is tried, whether or not this rollout created it (the EMF alarms exist only with a
        bundle version); alarms already gone are skipped, and the serving stack's alarms
        (``extra_alarm_names``) are never touched."""
        self._check(state)
        if not state.finished:
            raise RolloutError(
                f"the rollout of {state.model_name} is {state.status}: its guard alarms are "
                "still needed"
            )
        prefix = self.alarm_prefix(state)
        names = [f"{prefix}-{signal}" for signal in ALARM_SIGNALS]
        existing = [name for name in self._describe(names) if name not in self.extra_alarm_names]
        with self._errors("delete the challenger's alarms"):
            for first in range(0, len(existing), _NAMES_PER_CALL):
                self._client.delete_alarms(AlarmNames=existing[first : first + _NAMES_PER_CALL])

    def challenger_samples(self, state: RolloutState, now: datetime) -> int:
        """The challenger's invocations through the alias from the step's start until ``now``."""
        self._check(state)
        start, end = state.step_started_at.replace(microsecond=0), now.replace(microsecond=0)
        if end <= start:
            return 0
        dimensions = self.version_dimensions(state.challenger.function_version)
        with self._errors("count the challenger's invocations"):
            response = self._client.get_metric_statistics(
                Namespace=LAMBDA_NAMESPACE,
                MetricName="Invocations",
                Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
                StartTime=start,
                EndTime=end,
                Period=statistics_period(start, end, now),
                Statistics=["Sum"],
            )
        return int(sum(float(point.get("Sum", 0.0)) for point in response.get("Datapoints", [])))

    def _check(self, state: RolloutState) -> None:
        if state.function_name != self.function_name:
            raise RolloutError(
                f"this guard watches Lambda function {self.function_name}, but the rollout of "
                f"{state.model_name} runs on {state.function_name}"
            )

    def _describe(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        with self._errors("read the guard alarms"):
            paginator = self._client.get_paginator("describe_alarms")
            for first in range(0, len(names), _NAMES_PER_CALL):
                chunk = list(names[first : first + _NAMES_PER_CALL])
                pages = paginator.paginate(
                    AlarmNames=chunk, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
                )
                for page in pages:
                    for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                        found[str(alarm["AlarmName"])] = alarm
        return found

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """A guard that cannot read CloudWatch must stop the rollout, not wave it through."""
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            error = TransientRolloutError if is_transient(exc) else RolloutError
            raise error(
                f"could not {action} for Lambda function {self.function_name} in CloudWatch: "
                f"{exc}; the rollout was not moved"
            ) from exc


def statistics_period(start: datetime, end: datetime, now: datetime) -> int:
    """The smallest ``GetMetricStatistics`` period CloudWatch accepts for the window: at most
    1440 datapoints, and the coarser resolution CloudWatch keeps for older data."""
    age = now - start
    base = 60 if age <= timedelta(days=15) else 300 if age <= timedelta(days=63) else 3600
    needed = math.ceil((end - start).total_seconds() / _MAX_DATAPOINTS)
    return base * max(1, math.ceil(needed / base))
