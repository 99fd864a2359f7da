"""An S3 endpoint on loopback that answers every GET with one canned error, and a boto3 client
for it with botocore's retries off: for what moto cannot be made to answer (a 503 SlowDown, a
server clock a year behind)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from botocore.config import Config


def s3_client(endpoint: str) -> Any:
    """One attempt per call: botocore's own retries are not what is under test."""
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5)
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


@contextmanager
def answering_s3(status: int, code: str, *, date: datetime | None = None) -> Iterator[Any]:
    """A client of a server that answers every request ``status`` with S3 error ``code`` (and
    ``date`` as its Date header, when given)."""
    body = f"<Error><Code>{code}</Code><Message>{code} here</Message></Error>".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def date_time_string(self, timestamp: float | None = None) -> str:
            if date is None:
                return super().date_time_string(timestamp)
            return format_datetime(date, usegmt=True)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield s3_client(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
