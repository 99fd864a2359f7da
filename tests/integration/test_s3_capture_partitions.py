"""``S3CaptureReader`` over captures partitioned by model, on moto's server on loopback: every
model found under ``captures/`` (a delimited, paginated listing of the ``model=`` prefixes), or
one model's partitions only; one hour past the window read (Firehose partitions by arrival)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from lambdaserve.aws.clients import aws_client
from lambdaserve.aws.s3_drift_io import DriftIOError, S3CaptureReader, hour_partitions
from lambdaserve.kernel.capture import FeedbackRecord, partition, stream_line
from tests.integration.moto_server import new_bucket
from tests.support.capture_records import HOUR, NOON, PREDICTION_ID, record

pytestmark = pytest.mark.integration


class ListingSpy:
    """The S3 client, recording each listing's prefix, with listings cut to ``page_size``
    entries a page (so pagination is exercised with a handful of models)."""

    def __init__(self, client: Any, page_size: int = 1000) -> None:
        self.client = client
        self.page_size = page_size
        self.listed: list[tuple[str, str | None]] = []
        self.pages: list[int] = []

    def get_paginator(self, name: str) -> Any:
        spy, paginator = self, self.client.get_paginator(name)

        class Paginator:
            def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
                spy.listed.append((kwargs["Prefix"], kwargs.get("Delimiter")))
                config = {"PageSize": spy.page_size}
                pages = list(paginator.paginate(**kwargs, PaginationConfig=config))
                spy.pages.append(len(pages))
                return iter(pages)

        return Paginator()

    def get_object(self, **kwargs: Any) -> Any:
        return self.client.get_object(**kwargs)


@pytest.fixture(scope="module")
def s3(moto_endpoint: str) -> Any:
    return aws_client("s3", endpoint_url=moto_endpoint)


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    """Two models' partitions at noon, 13:00 (arrival-time lateness) and 14:00 (past it)."""
    name = new_bucket(s3, versioning=None)
    for model in ("churn", "fraud"):
        noon = [record(model, f"{model}-noon", NOON + timedelta(minutes=30))]
        late = [record(model, f"{model}-late", NOON + timedelta(minutes=59, seconds=58))]
        past = [record(model, f"{model}-past", NOON + 2 * HOUR)]
        outcome = FeedbackRecord(
            received_at=NOON, prediction_id=PREDICTION_ID, model_name=model, label=1
        )
        noon_body = "".join(stream_line(r) for r in [*noon, outcome]).encode()
        s3.put_object(
            Bucket=name,
            Key=f"{partition(NOON, model)}/part-0.gz",
            Body=gzip.compress(noon_body),
        )
        s3.put_object(
            Bucket=name,
            Key=f"{partition(NOON + HOUR, model)}/part-0",  # arrived in the next hour
            Body=stream_line(late[0]).encode(),
        )
        s3.put_object(
            Bucket=name,
            Key=f"{partition(NOON + 2 * HOUR, model)}/part-0",
            Body=stream_line(past[0]).encode(),
        )
    s3.put_object(Bucket=name, Key="captures/model=../part-0", Body=b"not a model's tree\n")
    s3.put_object(Bucket=name, Key="captures/dt=2026-11-27/hour=12/part-0", Body=b"old layout\n")
    return name


def test_without_a_model_every_models_partitions_are_discovered_and_read(
    s3: Any, bucket: str
) -> None:
    spy = ListingSpy(s3, page_size=1)  # one common prefix a page: the listing is paginated
    reader = S3CaptureReader(bucket, client=spy)
    ids = [r.prediction_id for r in reader(NOON, NOON + HOUR)]
    assert ids == ["churn-noon", "fraud-noon", "churn-late", "fraud-late"], "by hour, then model"
    assert spy.listed[0] == ("captures/", "/"), "the prefix the drift role may list"
    assert spy.pages[0] == 4, "dt=, model=churn, model=fraud, model=.. (skipped), a page each"
    assert [prefix for prefix, _ in spy.listed[1:]] == [
        f"{p}/" for p in [partition(NOON, "churn"), partition(NOON, "fraud")]
    ] + [f"{p}/" for p in [partition(NOON + HOUR, "churn"), partition(NOON + HOUR, "fraud")]]
    assert {f.model_name for f in reader.feedback(NOON, NOON + HOUR)} == {"churn", "fraud"}
    assert reader.invalid_lines == 0


def test_with_a_model_only_its_partitions_are_listed_and_read(s3: Any, bucket: str) -> None:
    spy = ListingSpy(s3)
    reader = S3CaptureReader(bucket, model="fraud", client=spy)
    records = list(reader.stream(NOON, NOON + HOUR))
    assert [r.prediction_id for r in records] == ["fraud-noon", PREDICTION_ID, "fraud-late"]
    assert {r.model_name for r in records} == {"fraud"}
    assert [r.prediction_id for r in reader(NOON, NOON + HOUR)] == ["fraud-noon", "fraud-late"]
    assert all(prefix.startswith("captures/model=fraud/") for prefix, _ in spy.listed)
    assert [prefix for prefix, _ in spy.listed[:2]] == [
        f"{p}/" for p in hour_partitions(NOON, NOON + 2 * HOUR, "fraud")
    ]


def test_a_reader_of_one_model_counts_into_the_readers_invalid_lines(s3: Any) -> None:
    bucket = new_bucket(s3, versioning=None)
    s3.put_object(
        Bucket=bucket,
        Key=f"{partition(NOON, 'broken')}/part-0",
        Body=b'{"not": "a capture"}\n' + stream_line(record("broken", "b", NOON)).encode(),
    )
    every = S3CaptureReader(bucket, client=s3)
    broken = every.of_model("broken")
    assert [r.prediction_id for r in broken(NOON, NOON + HOUR)] == ["b"]
    assert broken.invalid_lines == every.invalid_lines == 1
    assert list(S3CaptureReader(bucket, model="absent", client=s3)(NOON, NOON + HOUR)) == []


def test_an_invalid_model_name_is_refused_before_any_listing(s3: Any, bucket: str) -> None:
    with pytest.raises(DriftIOError, match=r"'\.\./x' is not a model name"):
        S3CaptureReader(bucket, model="../x", client=s3)
