"""The drift job's AWS adapters: captures from S3 partitions, create-only reports, SNS alarms.

Captures are read from the capture bucket's hourly partitions (the Firehose prefix)::

    s3://<capture bucket>/captures/dt=YYYY-MM-DD/hour=HH/<part>[.gz]

one object at a time, line by line (never a whole object in memory); each line is the capture
line the predict function prints, ``{"lambdaserve_capture":1,...}``. A line that is not one is
counted in ``invalid_lines``, logged and skipped: one bad line must not stop
drift detection for everything else. Reports are created with ``If-None-Match: *``, so a report
is written once and a rerun (or a racing run) changes nothing.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdaserve.aws.clients import aws_client, error_code
from lambdaserve.kernel.capture import (
    CaptureRecord,
    FeedbackRecord,
    parse_stream_line,
    partition,
)
from lambdaserve.kernel.errors import LambdaserveError

log = logging.getLogger(__name__)
_TAKEN_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
_HOUR = timedelta(hours=1)


class DriftIOError(LambdaserveError):
    """Reading captures, writing a report or publishing an alarm failed on AWS."""


class _Missing(DriftIOError):
    pass


class _Taken(DriftIOError):
    pass


@contextmanager
def _aws_errors(action: str) -> Iterator[None]:
    """botocore errors as DriftIOError naming the action (missing and taken keys apart)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        if code in _MISSING_CODES:
            raise _Missing(f"could not {action}: it does not exist") from exc
        if code in _TAKEN_CODES:
            raise _Taken(f"could not {action}: it is already written") from exc
        raise DriftIOError(f"could not {action}: {code or exc}") from exc
    except BotoCoreError as exc:
        raise DriftIOError(f"could not {action}: {exc}") from exc


def hour_partitions(start: datetime, end: datetime) -> list[str]:
    """The ``captures/dt=.../hour=HH`` partitions holding records captured in [start, end)."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    found = []
    while hour < end:
        found.append(partition(hour))
        hour += _HOUR
    return found


def _list_keys(client: Any, bucket: str, prefix: str) -> Iterator[str]:
    with _aws_errors(f"list s3://{bucket}/{prefix}"):
        pages = list(client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix))
    for page in pages:
        for item in page.get("Contents", []):
            yield str(item["Key"])


class S3CaptureReader:
    """A capture source for ``run_drift``: ``reader(start, end)`` streams the window's records.

    >>> reader = S3CaptureReader("my-captures")  # doctest: +SKIP
    >>> sum(1 for _ in reader(start, end))  # doctest: +SKIP
    """

    def __init__(self, bucket: str, *, prefix: str = "", client: Any | None = None) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.invalid_lines = 0
        self._client = client if client is not None else aws_client("s3")

    def __call__(self, start: datetime, end: datetime) -> Iterator[CaptureRecord]:
        for record in self.stream(start, end):
            if isinstance(record, CaptureRecord):
                yield record

    def feedback(self, start: datetime, end: datetime) -> Iterator[FeedbackRecord]:
        """Feedback records of the partitions of [start, end + 1 h) (the caller filters by time)."""
        for record in self.stream(start, end):
            if isinstance(record, FeedbackRecord):
                yield record

    def stream(self, start: datetime, end: datetime) -> Iterator[CaptureRecord | FeedbackRecord]:
        # Firehose partitions by ARRIVAL time (after its buffer), so a record captured at 10:59:58
        # can sit under hour=11: read one hour past the window; the job filters by capture time.
        for hour in hour_partitions(start, end + _HOUR):
            for key in _list_keys(self._client, self.bucket, f"{self.prefix}{hour}/"):
                yield from self._records(key)

    def _records(self, key: str) -> Iterator[CaptureRecord | FeedbackRecord]:
        action = f"read s3://{self.bucket}/{key}"
        with _aws_errors(action):
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
        invalid = 0
        with _aws_errors(action):
            lines = gzip.GzipFile(fileobj=body) if key.endswith(".gz") else body.iter_lines()
            for line in lines:
                if not line.strip():
                    continue
                try:
                    yield parse_stream_line(line)
                except ValueError:  # json and pydantic errors alike
                    invalid += 1
        if invalid:
            self.invalid_lines += invalid
            log.warning("skipped %d lines that are not capture records in %s", invalid, key)


class S3ReportFiles:
    """Create-only report files in a bucket (the ReportFiles port of ``DriftReportStore``)."""

    def __init__(self, bucket: str, *, prefix: str = "", client: Any | None = None) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._client = client if client is not None else aws_client("s3")

    def _uri(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def exists(self, name: str) -> bool:
        """Listed, not HEAD: S3 answers a missing key's HEAD with 404 only to a caller that may
        list the whole bucket (403 otherwise), and the drift role lists only under its prefixes
        (an ``s3:prefix`` condition), which a listing with the key as prefix satisfies."""
        key = self.prefix + name
        with _aws_errors(f"read {self._uri(name)}"):
            response = self._client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
        return any(item.get("Key") == key for item in response.get("Contents", []))

    def create(self, name: str, body: bytes, content_type: str) -> bool:
        """Write ``name`` unless it exists (``If-None-Match: *``); False when it does."""
        try:
            with _aws_errors(f"write {self._uri(name)}"):
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=self.prefix + name,
                    Body=body,
                    ContentType=content_type,
                    IfNoneMatch="*",
                )
        except _Taken:
            return False
        return True

    def read(self, name: str) -> bytes | None:
        try:
            with _aws_errors(f"read {self._uri(name)}"):
                response = self._client.get_object(Bucket=self.bucket, Key=self.prefix + name)
                body: bytes = response["Body"].read()
        except _Missing:
            return None
        return body

    def names(self, prefix: str) -> list[str]:
        keys = _list_keys(self._client, self.bucket, self.prefix + prefix)
        return sorted(key.removeprefix(self.prefix) for key in keys)


class SnsTopic:
    """Publishes alarms to one SNS topic."""

    def __init__(self, topic_arn: str, *, client: Any | None = None) -> None:
        self.topic_arn = topic_arn
        self._client = client if client is not None else aws_client("sns")

    def publish(self, subject: str, message: str) -> str:
        """Publish; return the message id. The subject is cut to SNS's 100 characters."""
        with _aws_errors(f"publish to {self.topic_arn}"):
            response = self._client.publish(
                TopicArn=self.topic_arn, Subject=subject[:100], Message=message
            )
        return str(response["MessageId"])
