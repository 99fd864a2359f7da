"""CloudWatch alarms on the live alias, on each executed version, and on the API, feeding SNS."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import AlarmThresholds


class PredictAlarms(Construct):
    """Alarms the rollout controller reads as guards; every alarm notifies the topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        alias: lambda_.Alias,
        versions: dict[str, str],
        api: apigw.RestApi,
        routes: list[tuple[str, str]] | None = None,
        topic: sns.ITopic,
        thresholds: AlarmThresholds,
    ) -> None:
        super().__init__(scope, construct_id)
        self._thresholds = thresholds
        self._action = actions.SnsAction(topic)
        self.alarms: list[cloudwatch.Alarm] = []
        resource = f"{function.function_name}:{alias.alias_name}"
        alias_dimensions = {"FunctionName": function.function_name, "Resource": resource}
        self._lambda_alarms("Alias", alias_dimensions, f"alias {alias.alias_name}")
        #: The API's 5XX answers of its routes (what the dashboard draws too).
        self.api_5xx = _api_5xx(api, routes, Duration.seconds(thresholds.period_seconds))
        self._alarm(
            "Api5xx",
            self.api_5xx,
            thresholds.api_5xx,
            "API Gateway 5XX responses" + (" of its routes" if routes else ""),
        )
        #: What the rollout function reads besides the challenger's own alarms: the whole alias
        #: and the API (the per-version alarms watch the bootstrap version, which serves nothing).
        self.stack_guards: list[cloudwatch.IAlarm] = [*self.alarms]
        for label, version in versions.items():
            dimensions = {**alias_dimensions, "ExecutedVersion": version}
            self._lambda_alarms(f"Version{label}", dimensions, f"{label} version")

    def _lambda_alarms(self, prefix: str, dimensions: dict[str, str], label: str) -> None:
        t = self._thresholds

        def metric(name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name=name,
                dimensions_map=dimensions,
                statistic=statistic,
                period=Duration.seconds(t.period_seconds),
            )

        self._alarm(f"{prefix}Errors", metric("Errors", "Sum"), t.errors, f"errors of {label}")
        self._alarm(
            f"{prefix}Throttles", metric("Throttles", "Sum"), t.throttles, f"throttles of {label}"
        )
        self._alarm(
            f"{prefix}LatencyP99",
            metric("Duration", "p99"),
            t.p99_latency_ms,
            f"p99 duration (ms) of {label}",
        )

    def _alarm(
        self, construct_id: str, metric: cloudwatch.IMetric, threshold: float, what: str
    ) -> None:
        t = self._thresholds
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=t.evaluation_periods,
            datapoints_to_alarm=t.datapoints_to_alarm,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"lambdaserve guard: {what} >= {threshold}",
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)


def _api_5xx(
    api: apigw.RestApi, routes: list[tuple[str, str]] | None, period: Duration
) -> cloudwatch.IMetric:
    """The API's 5XX responses: all of them, or the sum over ``routes`` (resource path, method),
    from the per-method metrics the stage publishes (``metrics_enabled``)."""
    if not routes:
        return api.metric_server_error(period=period)
    metrics: dict[str, cloudwatch.IMetric] = {
        f"r{index}": cloudwatch.Metric(
            namespace="AWS/ApiGateway",
            metric_name="5XXError",
            dimensions_map={
                "ApiName": api.rest_api_name,
                "Stage": api.deployment_stage.stage_name,
                "Resource": resource,
                "Method": method,
            },
            statistic="Sum",
            period=period,
        )
        for index, (resource, method) in enumerate(routes)
    }
    return cloudwatch.MathExpression(
        expression=f"SUM([{', '.join(metrics)}])", using_metrics=metrics, period=period, label="5XX"
    )
