"""The drift job's AWS adapters: captures from S3 partitions, create-only reports, SNS alarms.

Captures are read from the capture bucket's hourly partitions, one tree per model (each
model's Firehose prefix)::

    s3://<capture bucket>/captures/model=<model_name>/dt=YYYY-MM-DD/hour=HH/<part>[.gz]

of one model, or of every model found under ``captures/`` (a delimited listing of its
``model=`` common prefixes), one object at a time, line by line (never a whole object in
memory); each line is the capture line the predict function prints,
``{"lambdaserve_capture":1,...}``. A line that is not one is counted in ``invalid_lines``,
logged and skipped: one bad line must not stop drift detection for everything else. Reports
are created with ``If-None-Match: *``, so a report is written once and a rerun (or a racing
run) changes nothing.
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
    CAPTURE_PREFIX,
    MODEL_KEY,
    CaptureRecord,
    FeedbackRecord,
    is_model_name,
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


def _hours(start: datetime, end: datetime) -> Iterator[datetime]:
    """The start of each hour that overlaps [start, end)."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while hour < end:
        yield hour
        hour += _HOUR


def hour_partitions(start: datetime, end: datetime, model_name: str) -> list[str]:
    """The ``captures/model=<m>/dt=.../hour=HH`` partitions of ``model_name`` holding records
    captured in [start, end)."""
    return [partition(hour, model_name) for hour in _hours(start, end)]


def _list_keys(client: Any, bucket: str, prefix: str) -> Iterator[str]:
    with _aws_errors(f"list s3://{bucket}/{prefix}"):
        pages = list(client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix))
    for page in pages:
        for item in page.get("Contents", []):
            yield str(item["Key"])


def _model_names(client: Any, bucket: str, prefix: str) -> list[str]:
    """The models with a partition tree under ``prefix`` (``captures/model=<m>/``): the
    ``model=`` common prefixes of a delimited listing of ``captures/``, page by page (never
    the objects; the listing's prefix is ``captures/`` itself, which the drift role may list)."""
    root = f"{prefix}{CAPTURE_PREFIX}/"
    with _aws_errors(f"list s3://{bucket}/{root}"):
        pages = list(
            client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=root, Delimiter="/"
            )
        )
    trees = (
        str(common["Prefix"]).removeprefix(root).removesuffix("/")
        for page in pages
        for common in page.get("CommonPrefixes", [])
    )
    names = (tree.removeprefix(MODEL_KEY) for tree in trees if tree.startswith(MODEL_KEY))
    return sorted(name for name in names if is_model_name(name))


class S3CaptureReader:
    """A capture source for ``run_drift``: ``reader(start, end)`` streams the window's records
    of ``model``'s partitions, or (None) of every model found in the bucket.

    >>> reader = S3CaptureReader("my-captures", model="churn")  # doctest: +SKIP
    >>> sum(1 for _ in reader(start, end))  # doctest: +SKIP
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        model: str | None = None,
        client: Any | None = None,
    ) -> None:
        if model is not None and not is_model_name(model):
            raise DriftIOError(f"{model!r} is not a model name: no captures to read")
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.model = model
        self.invalid_lines = 0
        self._client = client if client is not None else aws_client("s3")
        self._parent: S3CaptureReader | None = None

    def of_model(self, model: str) -> S3CaptureReader:
        """A reader of ``model``'s partitions only, over the same bucket and client, whose
        invalid lines count into this reader's ``invalid_lines`` too."""
        reader = S3CaptureReader(self.bucket, prefix=self.prefix, model=model, client=self._client)
        reader._parent = self
        return reader

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
        """The records of the partitions of [start, end + 1 h), by hour, then model."""
        models = (
            [self.model]
            if self.model is not None
            else _model_names(self._client, self.bucket, self.prefix)
        )
        # Firehose partitions by ARRIVAL time (after its buffer), so a record captured at 10:59:58
        # can sit under hour=11: read one hour past the window; the job filters by capture time.
        for hour in _hours(start, end + _HOUR):
            for model in models:
                listed = f"{self.prefix}{partition(hour, model)}/"
                for key in _list_keys(self._client, self.bucket, listed):
                    yield from self._records(key)

    def _count_invalid(self, count: int) -> None:
        self.invalid_lines += count
        if self._parent is not None:
            self._parent._count_invalid(count)

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
            self._count_invalid(invalid)
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
