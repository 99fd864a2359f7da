"""The execution role of one state machine, trusted by Step Functions for that machine only.

CDK's own default role trusts ``states.amazonaws.com`` for ``stateMachine:*`` of the account:
any state machine created with it could run as it. This role's trust names the one machine by
ARN, built with ``format_arn`` from the name the stack gives the machine (the machine's own ARN
attribute would make the role depend on the machine, which depends on the role: a cycle).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct


def state_machine_arn(scope: Construct, name: str) -> str:
    """``arn:<partition>:states:<region>:<account>:stateMachine:<name>``."""
    return Stack.of(scope).format_arn(
        service="states",
        resource="stateMachine",
        resource_name=name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def state_machine_role(
    scope: Construct, construct_id: str, *, state_machine_name: str, description: str
) -> iam.Role:
    """A role only Step Functions may assume, and only to run ``state_machine_name`` of this
    account (``aws:SourceArn`` and ``aws:SourceAccount``, the confused-deputy guard)."""
    return iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal(
            "states.amazonaws.com",
            conditions={
                "ArnEquals": {"aws:SourceArn": state_machine_arn(scope, state_machine_name)},
                "StringEquals": {"aws:SourceAccount": Stack.of(scope).account},
            },
        ),
        description=description,
    )
