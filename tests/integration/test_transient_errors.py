"""AWS answers that a later attempt may not meet (throttling, a 5xx, a dropped connection) are
TransientError to the adapters' callers; refusals are not. Served over HTTP on loopback by a
server that answers every request with one S3 error, so botocore parses a real response."""

from __future__ import annotations

import pytest

from lambdaserve.aws.s3_rollout_state import S3RolloutState
from lambdaserve.kernel.errors import RolloutError, TransientError
from tests.integration.loopback_s3 import answering_s3, s3_client
from tests.integration.moto_server import closed_loopback_port

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("status", "code"), [(503, "SlowDown"), (500, "InternalError")])
def test_throttling_and_server_errors_are_transient(status: int, code: str) -> None:
    with answering_s3(status, code) as client:
        store = S3RolloutState("state-bucket", client=client)
        with pytest.raises(TransientError, match=code) as raised:
            store.load("churn")
    assert isinstance(raised.value, RolloutError)  # callers that do not retry see the usual type


def test_a_refusal_is_not_transient() -> None:
    with answering_s3(403, "AccessDenied") as client:
        store = S3RolloutState("state-bucket", client=client)
        with pytest.raises(RolloutError, match="AccessDenied") as raised:
            store.load("churn")
    assert not isinstance(raised.value, TransientError)


def test_a_connection_that_cannot_be_made_is_transient() -> None:
    client = s3_client(f"http://127.0.0.1:{closed_loopback_port()}")
    store = S3RolloutState("state-bucket", client=client)
    with pytest.raises(TransientError, match="Could not connect"):
        store.load("churn")
