"""AWS answers that a later attempt may not meet (throttling, a 5xx, a dropped connection) are
TransientError to the adapters' callers; refusals are not. Served over HTTP on loopback by a
server that answers every request with one S3 error, so botocore parses a real response."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.config import Config

from lambdaserve.aws.s3_rollout_state import S3RolloutState
from lambdaserve.core.errors import RolloutError, TransientError
from tests.integration.moto_server import closed_loopback_port

pytestmark = pytest.mark.integration


def _s3(endpoint: str) -> object:
    # One attempt: botocore's own retries are not what is under test.
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5)
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


@pytest.fixture
def answering() -> Iterator[object]:
    """``answering(status, code)``: the endpoint of a server that answers every request so."""
    servers: list[ThreadingHTTPServer] = []

    def start(status: int, code: str) -> str:
        body = f"<Error><Code>{code}</Code><Message>{code} here</Message></Error>".encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("status", "code"), [(503, "SlowDown"), (500, "InternalError")])
def test_throttling_and_server_errors_are_transient(
    answering: object, status: int, code: str
) -> None:
    store = S3RolloutState("state-bucket", client=_s3(answering(status, code)))  # type: ignore[operator]
    with pytest.raises(TransientError, match=code) as raised:
        store.load("churn")
    assert isinstance(raised.value, RolloutError)  # callers that do not retry see the usual type


def test_a_refusal_is_not_transient(answering: object) -> None:
    store = S3RolloutState("state-bucket", client=_s3(answering(403, "AccessDenied")))  # type: ignore[operator]
    with pytest.raises(RolloutError, match="AccessDenied") as raised:
        store.load("churn")
    assert not isinstance(raised.value, TransientError)


def test_a_connection_that_cannot_be_made_is_transient() -> None:
    store = S3RolloutState("state-bucket", client=_s3(f"http://127.0.0.1:{closed_loopback_port()}"))
    with pytest.raises(TransientError, match="Could not connect"):
        store.load("churn")
