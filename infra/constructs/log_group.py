"""The stage's CloudWatch log groups: retention from a number of days (the stage config speaks in
days), encrypted with the stage's logs key, and the key policy that lets CloudWatch Logs use it.

Every log group of the stage shares one customer-managed key (``StorageStack.logs_key``): the
predict function's log group holds each capture record (features, scores) until the
subscription hands it to Firehose, and the others cost nothing more to encrypt with it.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import StageConfig

_BY_DAYS = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1827: "FIVE_YEARS",
    3653: "TEN_YEARS",
}
#: What CloudWatch Logs needs of a log group's key (CloudWatch Logs user guide, "Encrypt log
#: data in CloudWatch Logs using AWS Key Management Service").
LOGS_KEY_ACTIONS = (
    "kms:Encrypt*",
    "kms:Decrypt*",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:Describe*",
)


def retention(days: int) -> logs.RetentionDays:
    return logs.RetentionDays[_BY_DAYS[days]]


def stage_log_group(
    scope: Construct, construct_id: str, config: StageConfig, *, key: kms.IKey
) -> logs.LogGroup:
    """A log group with the stage's retention, encrypted with the stage's logs key, deleted with
    its (stateless) stack."""
    return logs.LogGroup(
        scope,
        construct_id,
        retention=retention(config.log_retention_days),
        encryption_key=key,
        removal_policy=RemovalPolicy.DESTROY,
    )


def stage_logs_key(scope: Construct, construct_id: str) -> kms.Key:
    """The key every log group of the stage is encrypted with, rotated and retained (the log
    groups go with their stacks; their events stay readable only while the key exists).

    CloudWatch Logs of the key's region may use it for log groups of its account only: the
    encryption context names the log group (``kms:EncryptionContext:aws:logs:arn``). The log
    groups live in the stateless stacks with generated names, so the policy names the account's
    log groups, not each one (naming them would make this stateful stack depend on those)."""
    key = kms.Key(
        scope,
        construct_id,
        enable_key_rotation=True,
        description="encrypts the lambdaserve stage's CloudWatch log groups",
        removal_policy=RemovalPolicy.RETAIN,
    )
    stack = Stack.of(key)
    log_groups = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name="*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchLogsOfThisAccount",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=list(LOGS_KEY_ACTIONS),
            resources=["*"],
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
        )
    )
    return key
