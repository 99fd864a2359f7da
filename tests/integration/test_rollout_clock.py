"""Every controller of a rollout measures holds on one clock: S3's, read from the ``Date`` of
the state's responses (a laptop 31 minutes fast skipped a 30-minute hold measured on the clock of
whichever machine ticked). Served by a loopback server whose clock is a year behind ours."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.config import Config

from lambdaserve.aws.s3_rollout_state import S3RolloutState

pytestmark = pytest.mark.integration
SERVER_TIME = datetime(2025, 12, 3, 6, 0, tzinfo=UTC)


@pytest.fixture
def s3_a_year_behind() -> Iterator[object]:
    body = b"<Error><Code>NoSuchKey</Code><Message>no state</Message></Error>"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def date_time_string(self, timestamp: float | None = None) -> str:
            return format_datetime(SERVER_TIME, usegmt=True)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )
    server.shutdown()
    server.server_close()


def test_the_rollout_clock_is_s3s_not_this_machines(s3_a_year_behind: object) -> None:
    states = S3RolloutState("state-bucket", client=s3_a_year_behind)
    assert abs(states.now() - datetime.now(UTC)) < timedelta(minutes=1)  # nothing read yet

    assert states.load("churn") is None

    assert abs(states.now() - SERVER_TIME) < timedelta(seconds=5)
    earlier = states.now()
    assert states.now() >= earlier  # it advances on this machine's monotonic clock
