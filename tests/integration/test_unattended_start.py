"""`rollout start --unattended` hands the rollout to the state machine (moto's Step Functions)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from lambdaserve.aws.clients import aws_client
from lambdaserve.aws.rollout_machine import check_state_machine, start_unattended
from lambdaserve.kernel.errors import RolloutError
from tests.integration.moto_server import running_moto_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with running_moto_server() as url:
        yield url


def test_start_unattended_starts_an_execution_for_the_model(endpoint: str) -> None:
    sfn = aws_client("stepfunctions", endpoint_url=endpoint)
    machine = sfn.create_state_machine(
        name="lambdaserve-dev-rollout",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/rollout",
    )["stateMachineArn"]
    execution = start_unattended(machine, "churn", client=sfn)
    described = sfn.describe_execution(executionArn=execution)
    assert json.loads(described["input"]) == {"model_name": "churn"}


def test_a_missing_state_machine_is_a_clear_error(endpoint: str) -> None:
    sfn = aws_client("stepfunctions", endpoint_url=endpoint)
    with pytest.raises(RolloutError, match="could not start the rollout state machine"):
        start_unattended(
            "arn:aws:states:us-east-1:123456789012:stateMachine:nope", "churn", client=sfn
        )


def test_a_missing_state_machine_is_found_before_anything_moves(endpoint: str) -> None:
    sfn = aws_client("stepfunctions", endpoint_url=endpoint)
    with pytest.raises(RolloutError, match=r"cannot be used .* nothing was changed"):
        check_state_machine("arn:aws:states:us-east-1:123456789012:stateMachine:nope", client=sfn)
    machine = sfn.create_state_machine(
        name="lambdaserve-dev-rollout-checked",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/rollout",
    )["stateMachineArn"]
    check_state_machine(machine, client=sfn)  # an existing one passes
