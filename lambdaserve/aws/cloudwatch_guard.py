"""The AWS adapter of the rollout controller's ``GuardPort``: CloudWatch alarms on the challenger.

Each evaluation makes sure the challenger's alarms exist (created once, re-put only when the
policy changed, so an alarm keeps its state), reports every alarm in state ``ALARM`` (the
challenger's and any alarms of the serving stack named in ``extra_alarm_names``), and counts the
challenger's invocations since the step started for the minimum-sample rule. Once the rollout
is finished (promoted, rolled back or aborted) ``release`` deletes the challenger's alarms; they
carry no actions (the controller reads their state), which the rollout role enforces. The kinds
of alarm and their thresholds (``AwsGuardPolicy``) are in ``aws.guard_alarms``.

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
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdaserve.aws.clients import aws_client, is_transient
from lambdaserve.aws.guard_alarms import (
    EMF_NAMESPACE,
    AlarmSpec,
    AwsGuardPolicy,
    ClientErrorRateSpec,
    GuardAlarmSpec,
    ScoreShiftSpec,
)
from lambdaserve.kernel.errors import RolloutError, TransientRolloutError
from lambdaserve.kernel.function_versions import LIVE_ALIAS
from lambdaserve.kernel.metric_names import (
    MODEL_NAME,
    MODEL_VERSION,
    PREDICT_SERVICE,
    PredictMetric,
)
from lambdaserve.rollout.guard import GuardReport
from lambdaserve.rollout.state import RolloutState

LAMBDA_NAMESPACE = "AWS/Lambda"
EMF_SERVICE = PREDICT_SERVICE
_MAX_DATAPOINTS = 1440
#: The signal suffixes of the challenger's alarms (``<function>-v<version>-<signal>``).
ALARM_SIGNALS = ("errors", "p99", "server-errors", "client-error-rate", "score-shift")
_NAMES_PER_CALL = 100

BundleVersionOf = Callable[[RolloutState], str | None]


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
