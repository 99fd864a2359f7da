"""What every lambdaserve function shares: the architecture from the stage, a log group with
the stage's retention, and one dependency layer built without Docker for python3.13."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.assets import layer_code
from infra.config import StageConfig
from infra.constructs.log_retention import retention


def lambda_architecture(config: StageConfig) -> lambda_.Architecture:
    if config.architecture == "arm64":
        return lambda_.Architecture.ARM_64
    return lambda_.Architecture.X86_64


def function_log_group(scope: Construct, construct_id: str, config: StageConfig) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        construct_id,
        retention=retention(config.log_retention_days),
        removal_policy=RemovalPolicy.DESTROY,
    )


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
