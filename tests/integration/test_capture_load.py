"""Nothing is lost: under concurrent load on loopback, every served prediction is captured
exactly once, with the function version that served it; on Lambda, one marked log line per
prediction; and what capture costs per request.

Run with ``-s`` to see the latency comparison (capture on vs off, same run, same server code).
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.capture import (
    LOG_MARKER,
    CaptureRecord,
    FeedbackRecord,
    parse_capture_line,
    parse_stream_line,
)
from lambdaserve.local.artifact_store import LocalArtifactStore
from lambdaserve.local.capture_log import CaptureLog, read_captures
from lambdaserve.local.function_versions import LocalFunctionVersions
from lambdaserve.local.gateway import create_gateway
from lambdaserve.serving.app import create_app
from lambdaserve.serving.background_server import serve_in_thread
from lambdaserve.serving.capture_sinks import LogLineSink
from lambdaserve.serving.model_loader import LoadedModel
from lambdaserve.serving.settings import ServingSettings
from lambdaserve.wiring.aws_predict import LambdaHandler

pytestmark = pytest.mark.integration

Row = dict[str, Any]
SINGLES, BATCHES, BATCH_ROWS, INVALID, WORKERS = 2000, 50, 20, 40, 4
UNSEEN_EVERY = 97


@dataclass
class Served:
    """What the clients were answered: prediction id → the version header, plus totals."""

    versions: dict[str, str] = field(default_factory=dict)
    predictions: int = 0
    unseen: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)


def requests(rows: list[Row]) -> list[tuple[str, Any]]:
    """2,000 singles (some with an unseen region), 50 batches and some invalid bodies, shuffled."""
    work: list[tuple[str, Any]] = []
    for i in range(SINGLES):
        row = rows[i % len(rows)]
        if i % UNSEEN_EVERY == 0:
            row = row | {"region": "atlantis"}
        work.append(("/predict", {"features": row}))
    for i in range(BATCHES):
        start = (i * BATCH_ROWS) % (len(rows) - BATCH_ROWS)
        work.append(("/predict/batch", {"instances": rows[start : start + BATCH_ROWS]}))
    work += [("/predict", {"features": {}})] * INVALID
    random.Random(6).shuffle(work)
    return work


def send(url: str, work: list[tuple[str, Any]]) -> Served:
    """The work split over ``WORKERS`` threads, each with its own keep-alive client."""
    served = Served()

    def worker(share: list[tuple[str, Any]]) -> list[httpx.Response]:
        with httpx.Client(base_url=url, timeout=30) as client:
            return [client.post(path, json=body) for path, body in share]

    with ThreadPoolExecutor(WORKERS) as pool:
        shares = [work[i::WORKERS] for i in range(WORKERS)]
        answers = [r for batch in pool.map(worker, shares) for r in batch]
    for response in answers:
        served.statuses[response.status_code] += 1
        if response.status_code != 200:
            continue
        payload = response.json()
        version = response.headers.get("x-function-version", "")
        for prediction in payload.get("predictions", [payload]):
            assert prediction["prediction_id"] not in served.versions
            served.versions[prediction["prediction_id"]] = version
            served.predictions += 1
            if prediction["unseen_categories"]:
                served.unseen.add(prediction["prediction_id"])
    return served


def captured_since(root: Path, since: datetime) -> list[CaptureRecord]:
    return list(read_captures(root, since, datetime.now(UTC) + timedelta(seconds=1)))


def assert_captured_equals_served(records: list[CaptureRecord], served: Served) -> None:
    assert served.statuses == {200: SINGLES + BATCHES, 422: INVALID}
    assert served.predictions == SINGLES + BATCHES * BATCH_ROWS
    ids = [r.prediction_id for r in records]
    assert len(ids) == len(set(ids)), "no prediction is captured twice"
    assert set(ids) == set(served.versions), "every served prediction is captured, nothing else"
    assert {r.prediction_id for r in records if "unseen:region" in r.flags} == served.unseen
    assert len(served.unseen) == len(range(0, SINGLES, UNSEEN_EVERY))


def test_single_model_serve_captures_every_prediction(
    churn_bundle: VerifiedBundle, traffic_rows: list[Row], tmp_path: Path
) -> None:
    model = LoadedModel.from_bundle(churn_bundle)
    capture = CaptureLog(tmp_path)
    app = create_app(model, settings=ServingSettings(), capture=capture)
    since = datetime.now(UTC)
    with serve_in_thread(app) as url:
        served = send(url, requests(traffic_rows))
    capture.close()

    records = captured_since(tmp_path, since)
    assert_captured_equals_served(records, served)
    assert {(r.model_version, r.bundle_sha256, r.function_version) for r in records} == {
        (churn_bundle.manifest.version, churn_bundle.digest, None)
    }
    model_tree = f"model={churn_bundle.manifest.name}"
    parts = list((tmp_path / "captures" / model_tree).glob("dt=*/hour=*/part-*.jsonl"))
    assert parts, "the Firehose-like layout under the store, one tree per model"
    print(f"\nsingle model: {served.predictions} predictions served, {len(records)} captured")


def test_gateway_captures_every_prediction_with_the_version_that_served_it(
    churn_bundle: VerifiedBundle,
    churn_hgb_bundle: VerifiedBundle,
    traffic_rows: list[Row],
    tmp_path: Path,
) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    functions = LocalFunctionVersions(store.root)
    for bundle in (churn_bundle, churn_hgb_bundle):
        stored = store.put(bundle.path)
        functions.publish(
            bundle_uri=stored.uri, bundle_sha256=stored.digest, description=stored.version
        )
    alias = functions.create_alias("live", "1")
    functions.update_alias("live", "1", {"2": 0.5}, alias.revision_id)
    app = create_gateway(store.root, settings=ServingSettings(), rng=random.Random(7))
    since = datetime.now(UTC)
    with serve_in_thread(app) as url:
        served = send(url, requests(traffic_rows))

    records = captured_since(store.root, since)
    assert_captured_equals_served(records, served)
    by_id = {r.prediction_id: r for r in records}
    assert all(by_id[i].function_version == v for i, v in served.versions.items())
    per_version = Counter(r.function_version for r in records)
    assert per_version == Counter(served.versions.values())
    assert set(per_version) == {"1", "2"}
    assert all(r.model_version == r.function_version for r in records)  # v1 pins model 1, ...
    print(f"\ngateway: captured per function version {dict(per_version)}")


def invoke(handler: LambdaHandler, event: dict[str, Any], context: object) -> dict[str, Any]:
    response = handler(event, context)
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])  # type: ignore[no-any-return]


def stdout_lines(capsys: pytest.CaptureFixture[str]) -> tuple[list[CaptureRecord], list[Any]]:
    """The capture lines and the EMF blobs a handler printed."""
    captures, blobs = [], []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{"):
            payload = json.loads(line)
            if LOG_MARKER in payload:
                captures.append(parse_capture_line(line))
            elif "_aws" in payload:
                blobs.append(payload)
    return captures, blobs


def test_lambda_prints_one_capture_line_per_prediction_and_never_fails_on_it(
    churn_bundle: VerifiedBundle,
    traffic_rows: list[Row],
    tmp_path: Path,
    make_event: Any,
    lambda_context: Any,
    build_handler: Callable[[ServingSettings], LambdaHandler],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "7")  # Lambda sets it in every environment
    settings = ServingSettings(
        model_uri=str(churn_bundle.path),
        bundle_cache_dir=tmp_path,
        capture_mask=frozenset({"age"}),
        capture_hash=frozenset({"region"}),
        capture_salt="pepper",
    )
    handler = build_handler(settings)
    capsys.readouterr()

    single = invoke(
        handler, make_event("rest_api_post_predict", {"features": traffic_rows[0]}), lambda_context
    )
    batch = invoke(
        handler,
        make_event("http_api_post_predict_batch", {"instances": traffic_rows[:25]}),
        lambda_context,
    )
    captures, blobs = stdout_lines(capsys)
    served = [single, *batch["predictions"]]
    assert [c.prediction_id for c in captures] == [p["prediction_id"] for p in served]
    assert {c.function_version for c in captures} == {"7"}
    assert {c.bundle_sha256 for c in captures} == {churn_bundle.digest}
    assert all(c.features["age"] is None for c in captures)
    assert all(str(c.features["region"]).startswith("sha256:") for c in captures)
    assert traffic_rows[0]["region"] not in json.dumps([c.features for c in captures])
    assert not any("CaptureErrors" in blob for blob in blobs)

    def broken(self: LogLineSink, records: Any) -> None:
        raise BrokenPipeError

    monkeypatch.setattr(LogLineSink, "write", broken)
    again = invoke(
        handler,
        make_event("http_api_post_predict_batch", {"instances": traffic_rows[:3]}),
        lambda_context,
    )
    assert len(again["predictions"]) == 3
    captures, blobs = stdout_lines(capsys)
    assert captures == []
    (blob,) = blobs
    assert blob["CaptureErrors"] == [3.0] and blob["Predictions"] == [3.0]


def test_capture_latency_on_and_off(
    churn_bundle: VerifiedBundle, traffic_rows: list[Row], tmp_path: Path
) -> None:
    """No assertion on speed: the numbers for the record (``-s``). Both servers run at once and
    requests alternate between them, so the machine's load drifts on both alike."""
    model = LoadedModel.from_bundle(churn_bundle)
    capture = CaptureLog(tmp_path)
    apps = {"off": create_app(model), "on": create_app(model, capture=capture)}
    cases = {
        "/predict, 1 row": ("/predict", {"features": traffic_rows[0]}, 1000),
        "/predict/batch, 100 rows": ("/predict/batch", {"instances": traffic_rows[:100]}, 100),
        "/predict/batch, 1000 rows": (
            "/predict/batch",
            {"instances": (traffic_rows * 4)[:1000]},
            20,
        ),
    }
    with (
        serve_in_thread(apps["off"]) as off_url,
        serve_in_thread(apps["on"]) as on_url,
        httpx.Client(base_url=off_url) as off,
        httpx.Client(base_url=on_url) as on,
    ):
        clients = {"off": off, "on": on}
        print("\np50 latency through uvicorn on loopback, capture (CaptureLog) off vs on:")
        for label, (path, body, n) in cases.items():
            samples: dict[str, list[float]] = {"off": [], "on": []}
            for i in range(n + 10):
                for name in ("off", "on") if i % 2 else ("on", "off"):
                    started = time.perf_counter()
                    response = clients[name].post(path, json=body)
                    if i >= 10:  # the first ones warm up
                        samples[name].append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200
            p50 = {name: statistics.median(values) for name, values in samples.items()}
            added = p50["on"] - p50["off"]
            print(
                f"  {label:26s} off {p50['off']:7.3f} ms   on {p50['on']:7.3f} ms   "
                f"added {added * 1000:7.1f} us ({added / p50['off']:+.1%})"
            )
    capture.close()


def test_lambda_prints_feedback_into_the_capture_stream(
    churn_bundle: VerifiedBundle,
    traffic_rows: list[Row],
    tmp_path: Path,
    make_event: Any,
    lambda_context: Any,
    build_handler: Callable[[ServingSettings], LambdaHandler],
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = build_handler(
        ServingSettings(model_uri=str(churn_bundle.path), bundle_cache_dir=tmp_path)
    )
    prediction = invoke(
        handler, make_event("rest_api_post_predict", {"features": traffic_rows[0]}), lambda_context
    )
    capsys.readouterr()
    body = {
        "feedback": [
            {
                "prediction_id": prediction["prediction_id"],
                "label": 1,
                "feedback_token": prediction["feedback_token"],
            }
        ]
    }
    response = handler(make_event("rest_api_post_feedback", body), lambda_context)
    assert response["statusCode"] == 202, response["body"]
    assert json.loads(response["body"]) == {"accepted": 1, "model": "churn"}
    lines = [line for line in capsys.readouterr().out.splitlines() if LOG_MARKER in line]
    (record,) = [parse_stream_line(line) for line in lines]
    assert isinstance(record, FeedbackRecord)
    assert (record.prediction_id, record.label) == (prediction["prediction_id"], 1)
    # The log subscription selects lines by the marker: feedback rides the capture pipeline.
    assert lines[0].startswith(f'{{"{LOG_MARKER}":1,')
