"""Capture: masking and hashing, the record and its line format, the sinks, and the guarantee
that capture never fails a request."""

from __future__ import annotations

import io
import json
import logging
import math
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from lambdaserve.datasets import churn
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.capture import (
    LOG_MARKER,
    OUTPUT_FIELDS,
    CapturePolicy,
    CaptureRecord,
    parse_capture_line,
)
from lambdaserve.kernel.capture_lines import CaptureBatch
from lambdaserve.kernel.errors import CapturePolicyUnavailableError, LambdaserveError
from lambdaserve.local.capture_log import (
    CaptureLog,
    capture_line,
    read_captures,
)
from lambdaserve.serving.app import create_app
from lambdaserve.serving.capture_sinks import LogLineSink, MemorySink
from lambdaserve.serving.model_loader import LoadedModel
from lambdaserve.serving.settings import ServingSettings

pytestmark = pytest.mark.unit

Row = dict[str, Any]
FEATURES: dict[str, Any] = {"email": "ann@example.com", "age": 41, "plan": "gold", "spend": 12.5}
NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def record(**changes: Any) -> CaptureRecord:
    values: dict[str, Any] = {
        "captured_at": NOON,
        "prediction_id": "01JDQ4Z8Y2M7T0000000000000",
        "model_name": "churn",
        "model_version": "3",
        "bundle_sha256": "ab" * 32,
        "function_version": "7",
        "features": FEATURES,
        "probability": 0.8125,
        "label": 1,
        "latency_ms": 1.25,
        "flags": ("unseen:plan",),
    }
    return CaptureRecord(**(values | changes))


# --- policy -----------------------------------------------------------------------------------


def test_masked_fields_are_null_and_the_rest_untouched() -> None:
    policy = CapturePolicy(mask=frozenset({"email", "not_a_feature"}))
    captured = policy.apply(FEATURES)
    assert captured["email"] is None
    assert {k: v for k, v in captured.items() if k != "email"} == {
        k: v for k, v in FEATURES.items() if k != "email"
    }
    assert set(captured) == set(FEATURES)


def test_hashes_are_stable_salted_and_unreadable() -> None:
    policy = CapturePolicy(hash=frozenset({"email", "age"}), salt="pepper")
    first, again = policy.apply(FEATURES), policy.apply(dict(FEATURES))
    assert first == again, "the same value hashes the same way every time"
    assert isinstance(first["email"], str) and first["email"].startswith("sha256:")
    assert "ann" not in first["email"] and first["age"] != 41
    assert policy.apply(FEATURES | {"email": "bob@example.com"})["email"] != first["email"]
    resalted = CapturePolicy(hash=frozenset({"email"}), salt="other").apply(FEATURES)
    assert resalted["email"] != first["email"]
    assert first["plan"] == "gold" and first["spend"] == 12.5
    assert policy.apply(FEATURES | {"email": None})["email"] is None, "missing stays missing"


def test_settings_read_field_lists_and_refuse_unsalted_hashing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAPTURE_MASK", "email, phone,")
    monkeypatch.setenv("CAPTURE_HASH", '["customer_id"]')
    monkeypatch.setenv("CAPTURE_SALT", "pepper")
    monkeypatch.setenv("CAPTURE_ENABLED", "false")
    settings = ServingSettings()
    policy = settings.capture_policy()
    assert policy.mask == {"email", "phone"} and policy.hash == {"customer_id"}
    assert policy.salt == "pepper" and not policy.enabled
    assert "pepper" not in repr(settings), "the salt is kept out of reprs and logs"

    monkeypatch.delenv("CAPTURE_SALT")
    with pytest.raises(ValidationError, match="CAPTURE_HASH needs CAPTURE_SALT"):
        ServingSettings()
    for name in ("CAPTURE_MASK", "CAPTURE_HASH", "CAPTURE_ENABLED"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("CAPTURE_ENABLED", "true")
    defaults = ServingSettings().capture_policy()
    assert defaults.enabled and not defaults.mask and not defaults.hash


# --- the record and its line ------------------------------------------------------------------


def test_a_record_survives_its_line_unchanged() -> None:
    for original in (record(), record(label="yes", function_version=None, flags=())):
        line = capture_line(original)
        assert line.endswith("\n") and line.count("\n") == 1
        payload = json.loads(line)
        assert next(iter(payload)) == LOG_MARKER and payload[LOG_MARKER] == 1
        assert payload["schema_version"] == 1
        dumped = json.loads(original.model_dump_json())
        # The line leaves out the outputs of other tasks (unset): a binary line is unchanged.
        assert {k: v for k, v in payload.items() if k != LOG_MARKER} == {
            k: v for k, v in dumped.items() if v is not None or k not in OUTPUT_FIELDS
        }
        assert {"probabilities", "prediction"}.isdisjoint(payload)
        assert parse_capture_line(line) == original
        assert parse_capture_line(line.encode()) == original


def test_record_shape() -> None:
    assert set(CaptureRecord.model_fields) == {
        "schema_version",
        "captured_at",
        "prediction_id",
        "model_name",
        "model_version",
        "bundle_sha256",
        "function_version",
        "features",
        "probability",
        "label",
        "probabilities",
        "prediction",
        "latency_ms",
        "flags",
    }
    with pytest.raises(ValidationError):
        CaptureRecord.model_validate({**record().model_dump(), "surprise": 1})
    with pytest.raises(ValueError, match="marker"):
        parse_capture_line(record().model_dump_json())


def test_a_batch_is_its_records_and_serializes_like_them() -> None:
    shared = record(prediction_id="", features={}, flags=())
    rows = [
        ("ID1", FEATURES, {"probability": 0.25, "label": 0}, ()),
        (
            "ID2",
            FEATURES | {"plan": 'quote " and \\ back\nslash'},
            {"probability": 0.75, "label": 1},
            ("unseen:plan",),
        ),
        ("ID3", {"age": None}, {"probability": 1.0, "label": 1}, ()),
    ]
    batch = CaptureBatch(shared, rows)
    expected = [
        record(prediction_id=i, features=f, flags=fl, **outputs) for i, f, outputs, fl in rows
    ]
    assert len(batch) == 3 and list(batch) == expected
    assert batch[-1] == expected[-1] and list(batch[1:]) == expected[1:]
    lines = batch.text().splitlines()
    assert [json.loads(line) for line in lines] == [json.loads(capture_line(r)) for r in expected]
    assert all(line.startswith('{"lambdaserve_capture":1,') for line in lines)
    assert [parse_capture_line(line) for line in batch.text().splitlines()] == expected
    stream = io.StringIO()
    LogLineSink(stream).write(batch)
    assert stream.getvalue() == batch.text()


def test_log_line_sink_prints_one_marked_line_per_record() -> None:
    stream = io.StringIO()
    records = [record(prediction_id=f"ID{i}", features=FEATURES | {"plan": "a\nb"}) for i in (1, 2)]
    LogLineSink(stream).write(records)
    LogLineSink(stream).write([])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, "a newline inside a value stays escaped"
    assert all(line.startswith('{"lambdaserve_capture":1,') for line in lines)
    assert [parse_capture_line(line) for line in lines] == records
    assert " " not in lines[0].replace("ann@example.com", ""), "compact JSON"


def test_log_line_sink_writes_to_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    LogLineSink().write([record()])
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)[LOG_MARKER] == 1


# --- the local JSONL log ----------------------------------------------------------------------


def test_capture_log_partitions_by_hour_and_reads_a_window(tmp_path: Path) -> None:
    log = CaptureLog(tmp_path)
    late = [record(prediction_id=f"A{i}", captured_at=NOON - timedelta(minutes=i)) for i in (1, 2)]
    log.write(late)
    log.write([record(prediction_id="B", captured_at=NOON + timedelta(minutes=59, seconds=59))])
    log.write([record(prediction_id="C", captured_at=NOON + timedelta(hours=1))])
    log.close()

    parts = sorted(p.relative_to(tmp_path).parent.as_posix() for p in tmp_path.rglob("*.jsonl"))
    assert parts == [
        "captures/model=churn/dt=2026-11-27/hour=11",
        "captures/model=churn/dt=2026-11-27/hour=12",
        "captures/model=churn/dt=2026-11-27/hour=13",
    ]
    ids = [r.prediction_id for r in read_captures(tmp_path, NOON, NOON + timedelta(hours=1))]
    assert ids == ["B"], "[start, end): 13:00 is out, 11:58 is out"
    window = read_captures(tmp_path / "captures", NOON - timedelta(minutes=1), NOON)
    assert [r.prediction_id for r in window] == ["A1"]
    naive = read_captures(tmp_path, datetime(2026, 11, 27), datetime(2026, 11, 28))
    assert sorted(r.prediction_id for r in naive) == ["A1", "A2", "B", "C"]


def test_a_torn_last_line_is_skipped_and_garbage_is_an_error(tmp_path: Path) -> None:
    log = CaptureLog(tmp_path)
    log.write([record(prediction_id="whole")])
    log.close()
    (part,) = tmp_path.rglob("*.jsonl")
    with part.open("ab") as handle:
        handle.write(capture_line(record(prediction_id="torn")).encode()[:-20])
    window = (NOON, NOON + timedelta(hours=1))
    assert [r.prediction_id for r in read_captures(tmp_path, *window)] == ["whole"]

    part.write_bytes(b"not json\n" + part.read_bytes())
    with pytest.raises(LambdaserveError, match=r"part-\d+\.jsonl:1 is not a capture record"):
        list(read_captures(tmp_path, *window))


def test_capture_log_is_thread_safe(tmp_path: Path) -> None:
    log = CaptureLog(tmp_path)

    def write(worker: int) -> None:
        for i in range(100):
            batch = [record(prediction_id=f"{worker}-{i}-{j}") for j in range(1 + i % 3)]
            log.write(batch)

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    ids = [r.prediction_id for r in read_captures(tmp_path, NOON, NOON + timedelta(hours=1))]
    assert len(ids) == len(set(ids)) == 8 * sum(1 + i % 3 for i in range(100))


# --- through the app --------------------------------------------------------------------------


class FailingSink:
    def __init__(self) -> None:
        self.calls = 0

    def write(self, records: Sequence[CaptureRecord]) -> None:
        self.calls += 1
        raise OSError("disk full")


class CountingObserver:
    def __init__(self) -> None:
        self.failed = 0

    def predicted(
        self, model: LoadedModel, *, rows: int, latency_ms: float, unseen: int, mean_score: float
    ) -> None:
        pass

    def capture_failed(self, model: LoadedModel, *, records: int) -> None:
        self.failed += records


@pytest.fixture(scope="module")
def model(churn_bundle: VerifiedBundle) -> LoadedModel:
    return LoadedModel.from_bundle(churn_bundle)


@pytest.fixture(scope="module")
def rows(churn_bundle: VerifiedBundle) -> list[Row]:
    frame = churn.generate_churn(40, seed=5)
    specs = churn_bundle.manifest.features.features
    out = []
    for raw in frame.to_dict(orient="records"):
        row: Row = {}
        for spec in specs:
            value = raw[spec.name]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                row[spec.name] = None
            elif spec.kind == "categorical":
                row[spec.name] = str(value)
            elif isinstance(value, str):
                row[spec.name] = float(value) if value.strip() else None
            else:
                row[spec.name] = int(value) if spec.dtype == "int" else float(value)
        out.append(row)
    return out


def test_one_record_per_row_of_a_batch(model: LoadedModel, rows: list[Row]) -> None:
    sink = MemorySink()
    policy = CapturePolicy(mask=frozenset({"age"}), hash=frozenset({"region"}), salt="s")
    app = create_app(model, capture=sink, capture_policy=policy, function_version="4")
    batch = [*rows[:9], rows[9] | {"region": "Atlantis"}]
    started = datetime.now(UTC)
    with TestClient(app) as client:
        response = client.post("/predict/batch", json={"instances": batch})
        single = client.post("/predict", json={"features": rows[10]})
        refused = client.post("/predict", json={"features": {}})
    assert response.status_code == single.status_code == 200
    assert refused.status_code == 422

    predictions = [*response.json()["predictions"], single.json()]
    assert len(sink.records) == len(predictions) == 11, "nothing captured for the 422"
    manifest = model.bundle.manifest
    for captured, prediction, row in zip(
        sink.records, predictions, [*batch, rows[10]], strict=True
    ):
        assert captured.prediction_id == prediction["prediction_id"]
        assert captured.probability == prediction["probability"]
        assert captured.label == prediction["label"]
        assert (captured.model_name, captured.model_version) == (manifest.name, manifest.version)
        assert captured.bundle_sha256 == model.bundle.digest
        assert captured.function_version == "4"
        assert started <= captured.captured_at <= datetime.now(UTC)
        assert captured.latency_ms > 0
        assert captured.features["age"] is None
        assert str(captured.features["region"]).startswith("sha256:")
        untouched = {k: v for k, v in row.items() if k not in {"age", "region"}}
        assert {k: captured.features[k] for k in untouched} == untouched
        assert captured.flags == tuple(f"unseen:{n}" for n in prediction["unseen_categories"])
        assert parse_capture_line(capture_line(captured)) == captured
    assert sink.records[9].flags == ("unseen:region",)
    assert len({r.latency_ms for r in sink.records[:10]}) == 1, "a batch shares its latency"


def test_a_failing_sink_never_fails_the_request(
    model: LoadedModel, rows: list[Row], caplog: pytest.LogCaptureFixture
) -> None:
    sink, observer = FailingSink(), CountingObserver()
    app = create_app(model, capture=sink, observer=observer)
    with TestClient(app) as client, caplog.at_level(logging.WARNING):
        single = client.post("/predict", json={"features": rows[0]})
        batch = client.post("/predict/batch", json={"instances": rows[:5]})
    assert single.status_code == batch.status_code == 200
    assert len(batch.json()["predictions"]) == 5
    assert sink.calls == 2
    assert observer.failed == 6, "CaptureErrors counts the records that were not captured"
    assert "capture of 5 record(s) failed in FailingSink: OSError" in caplog.text
    assert "disk full" not in caplog.text, "only the error's type: messages may quote values"


def test_capture_can_be_turned_off(model: LoadedModel, rows: list[Row]) -> None:
    sink = MemorySink()
    app = create_app(model, settings=ServingSettings(capture_enabled=False), capture=sink)
    with TestClient(app) as client:
        assert client.post("/predict", json={"features": rows[0]}).status_code == 200
    assert sink.records == []
    without_sink = create_app(model)
    with TestClient(without_sink) as client:
        assert client.post("/predict", json={"features": rows[0]}).status_code == 200


@pytest.mark.parametrize(
    "policy",
    [CapturePolicy(mask=frozenset({"emial"})), CapturePolicy(hash=frozenset({"Region"}), salt="s")],
)
def test_policy_naming_unknown_fields_stops_serving(
    model: LoadedModel, rows: list[Row], policy: CapturePolicy
) -> None:
    sink = MemorySink()
    client = TestClient(create_app(model, capture=sink, capture_policy=policy))
    (name,) = policy.altered
    response = client.post("/predict", json={"features": rows[0]})
    assert response.status_code == 503
    assert name in response.json()["detail"]
    assert client.get("/health").status_code == 503
    assert sink.records == []


class _StagePolicy:
    """The stage's policy as a version sees it: it may change, or be unreadable for a while."""

    def __init__(self, policy: CapturePolicy) -> None:
        self.policy: CapturePolicy | None = policy

    def current(self) -> CapturePolicy:
        if self.policy is None:
            raise CapturePolicyUnavailableError("the capture policy could not be read (test)")
        return self.policy


def test_a_policy_that_cannot_be_refreshed_skips_capture_not_predictions(
    model: LoadedModel, rows: list[Row]
) -> None:
    sink = MemorySink()
    stage = _StagePolicy(CapturePolicy(mask=frozenset({"age"})))
    client = TestClient(create_app(model, capture=sink, capture_policy=stage))
    assert client.post("/predict", json={"features": rows[0]}).status_code == 200
    stage.policy = None  # e.g. SSM throttled: the policy in force cannot be known
    skipped = client.post("/predict/batch", json={"instances": rows[:3]})
    assert skipped.status_code == 200 and client.get("/health").status_code == 200
    stage.policy = CapturePolicy(mask=frozenset({"age", "region"}))
    assert client.post("/predict", json={"features": rows[4]}).status_code == 200
    # Three rows skipped; the last row captured under the new policy.
    assert [(r.features["age"], r.features["region"]) for r in sink.records] == [
        (None, rows[0]["region"]),
        (None, None),
    ]
