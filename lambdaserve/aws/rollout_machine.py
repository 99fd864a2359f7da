"""Start the rollout state machine, so a rollout runs unattended on AWS."""

from __future__ import annotations

import json
from typing import Any

from lambdaserve.aws.clients import aws_client
from lambdaserve.kernel.errors import RolloutError


def check_state_machine(state_machine_arn: str, *, client: Any | None = None) -> None:
    """Fail before anything moves when the state machine is missing or cannot be read."""
    from botocore.exceptions import BotoCoreError, ClientError

    sfn = client or aws_client("stepfunctions")
    try:
        sfn.describe_state_machine(stateMachineArn=state_machine_arn)
    except (BotoCoreError, ClientError) as exc:
        raise RolloutError(
            f"the rollout state machine {state_machine_arn} cannot be used ({exc}); "
            "nothing was changed"
        ) from exc


def start_unattended(state_machine_arn: str, model_name: str, *, client: Any | None = None) -> str:
    """Start an execution named after the model; returns its ARN."""
    from botocore.exceptions import BotoCoreError, ClientError

    sfn = client or aws_client("stepfunctions")
    try:
        response = sfn.start_execution(
            stateMachineArn=state_machine_arn, input=json.dumps({"model_name": model_name})
        )
    except (BotoCoreError, ClientError) as exc:
        raise RolloutError(f"could not start the rollout state machine: {exc}") from exc
    return str(response["executionArn"])
