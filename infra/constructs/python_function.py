"""What every lambdaserve function shares: the architecture from the stage, its own encrypted log
group (``log_group.stage_log_group``), and one dependency layer built without Docker for
python3.13."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.assets import layer_code
from infra.config import StageConfig


def lambda_architecture(config: StageConfig) -> lambda_.Architecture:
    if config.architecture == "arm64":
        return lambda_.Architecture.ARM_64
    return lambda_.Architecture.X86_64


def dependency_layer(
    scope: Construct,
    construct_id: str,
    *,
    config: StageConfig,
    requirement_sets: list[str],
    function: str,
    description: str,
) -> lambda_.LayerVersion:
    """The layer ``function`` deploys; its build fails when function + layer pass 250 MB."""
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=layer_code(requirement_sets, config.architecture, function=function),
        compatible_runtimes=[lambda_.Runtime.PYTHON_3_13],
        compatible_architectures=[lambda_architecture(config)],
        description=f"lambdaserve {description} ({config.architecture})",
    )


def logs_and_tracing(log_group: logs.ILogGroup) -> list[iam.PolicyStatement]:
    """Every function's own log streams and X-Ray writes (X-Ray takes no resource ARN)."""
    return [
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn, f"{log_group.log_group_arn}:*"],
        ),
        iam.PolicyStatement(
            actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"], resources=["*"]
        ),
    ]
