"""The drift job: window arithmetic, idempotent reports, per-version references, masked fields,
streaming merges, persistence, the HTML page, the local report files and the Lambda handler."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from lambdaserve.aws.drift_metrics import EmfDriftMetrics
from lambdaserve.drift.histograms import FeatureWindows
from lambdaserve.drift.html import render_html
from lambdaserve.drift.job import Baseline, DriftJobError, run_drift
from lambdaserve.drift.lambda_job import build_handler
from lambdaserve.drift.report import DriftReport, ReportKey
from lambdaserve.drift.report_store import DriftReportStore
from lambdaserve.drift.scheduled import DriftPorts
from lambdaserve.drift.windows import WindowAccumulator, drift_window
from lambdaserve.kernel.capture import CaptureRecord
from lambdaserve.kernel.errors import ModelNotFoundError
from lambdaserve.kernel.reference import (
    ReferenceProfile,
    categorical_reference,
    numeric_reference,
    score_reference,
)
from lambdaserve.kernel.schema import FeatureSchema, FeatureSpec
from lambdaserve.local.drift_reports import LocalReportFiles
from lambdaserve.wiring.aws_drift import DriftSettings, drift_schedule
from tests.support.fakes import FakeTopic, MemoryFiles
from tests.support.lambda_context import FakeLambdaContext

pytestmark = pytest.mark.unit

HOUR = timedelta(hours=1)
SCHEDULED = datetime(2026, 11, 27, 12, 5, tzinfo=UTC)  # judges 10:00-11:00
WINDOW_START = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
SCHEMA = FeatureSchema(
    features=(
        FeatureSpec(name="amount", kind="numeric", dtype="float", nullable=True),
        FeatureSpec(name="plan", kind="categorical", dtype="string", nullable=True),
        FeatureSpec(name="email", kind="categorical", dtype="string", nullable=False),
    )
)
PLANS = np.array(["basic", "standard", "premium"], dtype=object)


def reference(center: float = 0.0, *, seed: int = 0, rows: int = 4000) -> ReferenceProfile:
    rng = np.random.default_rng(seed)
    return ReferenceProfile(
        rows=rows,
        features={
            "amount": numeric_reference(rng.normal(center, 1.0, rows)),
            "plan": categorical_reference(rng.choice(PLANS, rows, p=[0.5, 0.3, 0.2])),
            "email": categorical_reference(
                np.array([f"u{i}@x" for i in range(rows)], dtype=object)
            ),
        },
        score=score_reference(rng.beta(2, 5, rows)),
    )


def records(
    n: int,
    *,
    center: float = 0.0,
    plans: tuple[float, float, float] = (0.5, 0.3, 0.2),
    version: str = "1",
    start: datetime = WINDOW_START,
    seed: int = 1,
    span: timedelta = HOUR,
) -> list[CaptureRecord]:
    rng = np.random.default_rng(seed)
    amounts = rng.normal(center, 1.0, n)
    chosen = rng.choice(PLANS, n, p=list(plans))
    scores = rng.beta(2, 5, n)
    step = span / n
    return [
        CaptureRecord(
            captured_at=start + i * step,
            prediction_id=f"p{seed}-{version}-{i}",
            model_name="churn",
            model_version=version,
            bundle_sha256="0" * 64,
            features={"amount": float(amounts[i]), "plan": str(chosen[i]), "email": None},
            probability=float(scores[i]),
            label=int(scores[i] > 0.5),
            latency_ms=1.0,
        )
        for i in range(n)
    ]


class Baselines:
    """References by version, recording which versions were asked for."""

    def __init__(self, by_version: dict[str, ReferenceProfile], altered: Iterable[str] = ()):
        self.by_version = by_version
        self.altered = frozenset(altered)
        self.asked: list[tuple[str, str]] = []

    def __call__(self, name: str, version: str) -> Baseline:
        self.asked.append((name, version))
        if version not in self.by_version:
            raise ModelNotFoundError(f"model {name} version {version} is not stored")
        return Baseline(self.by_version[version], SCHEMA, self.altered)


def source(rows: list[CaptureRecord]) -> Any:
    def captures(start: datetime, end: datetime) -> Iterator[CaptureRecord]:
        return iter(rows)

    return captures


def run(
    rows: list[CaptureRecord],
    store: DriftReportStore,
    baselines: Baselines,
    *,
    at: datetime = SCHEDULED,
    **options: Any,
) -> list[DriftReport]:
    return run_drift(at, captures=source(rows), references=baselines, reports=store, **options)


# --- the window -----------------------------------------------------------------------------


def test_window_comes_from_the_scheduled_time_minus_lateness() -> None:
    span = drift_window(SCHEDULED, window=HOUR, lateness=timedelta(minutes=15))
    assert (span.start, span.end) == (WINDOW_START, WINDOW_START + HOUR)


def test_a_retry_of_the_same_schedule_judges_the_same_window() -> None:
    first = drift_window(SCHEDULED)
    assert drift_window(SCHEDULED) == first
    # The scheduled time is in the event; when the retry runs does not matter.
    assert drift_window(SCHEDULED.astimezone(UTC)) == first


@pytest.mark.parametrize(
    ("scheduled", "start"),
    [
        ("2026-11-27T12:15:00+00:00", "2026-11-27T11:00:00+00:00"),  # lateness ends at 12:00
        ("2026-11-27T12:14:59+00:00", "2026-11-27T10:00:00+00:00"),
        ("2026-11-27T00:05:00+00:00", "2026-11-26T22:00:00+00:00"),  # across midnight
        ("2026-11-27T13:05:00+01:00", "2026-11-27T10:00:00+00:00"),  # offsets are honoured
    ],
)
def test_window_boundaries(scheduled: str, start: str) -> None:
    span = drift_window(datetime.fromisoformat(scheduled))
    assert span.start == datetime.fromisoformat(start)
    assert span.end - span.start == HOUR


def test_daily_windows_align_with_midnight_utc() -> None:
    span = drift_window(SCHEDULED, window=timedelta(days=1), lateness=timedelta(minutes=30))
    assert span.end == datetime(2026, 11, 27, tzinfo=UTC)


@pytest.mark.parametrize(
    ("scheduled", "window", "lateness"),
    [
        (SCHEDULED.replace(tzinfo=None), HOUR, timedelta(0)),
        (SCHEDULED, timedelta(minutes=7), timedelta(0)),
        (SCHEDULED, timedelta(seconds=30), timedelta(0)),
        (SCHEDULED, HOUR, timedelta(minutes=-1)),
    ],
)
def test_window_refuses_bad_input(
    scheduled: datetime, window: timedelta, lateness: timedelta
) -> None:
    with pytest.raises(ValueError):
        drift_window(scheduled, window=window, lateness=lateness)


# --- the job --------------------------------------------------------------------------------


def test_report_once_per_version_and_window_and_rerun_writes_nothing() -> None:
    files = MemoryFiles()
    store = DriftReportStore(files)
    seen: list[DriftReport] = []
    rows = records(500)
    first = run(rows, store, Baselines({"1": reference()}), on_stored=seen.append)
    assert [(r.model_name, r.model_version, r.window_end) for r in first] == [
        ("churn", "1", WINDOW_START + HOUR)
    ]
    assert sorted(files.files) == [
        "drift-reports/churn/1/2026-11-27T1100.html",
        "drift-reports/churn/1/2026-11-27T1100.json",
    ]
    snapshot, creates = dict(files.files), files.creates
    baselines = Baselines({"1": reference()})
    again = run(rows, store, baselines, on_stored=seen.append)
    assert again == []
    assert files.files == snapshot and files.creates == creates
    assert len(seen) == 1  # metrics and alarms for new reports only
    assert baselines.asked == []  # an existing report is not recomputed


def test_each_version_is_compared_with_its_own_reference() -> None:
    store = DriftReportStore(MemoryFiles())
    baselines = Baselines({"1": reference(0.0), "2": reference(5.0, seed=3)})
    rows = records(600, center=0.0, version="1") + records(600, center=5.0, version="2", seed=2)
    reports = run(rows, store, baselines)
    assert sorted(baselines.asked) == [("churn", "1"), ("churn", "2")]
    assert [(r.model_version, r.rows) for r in reports] == [("1", 600), ("2", 600)]
    for report in reports:
        amount = next(r for r in report.features if r.feature == "amount")
        assert amount.verdict == "no_drift", report.model_version
    # Judged against the other version's reference, version 2's traffic would drift.
    crossed = run(
        records(600, center=5.0, version="2", seed=2),
        DriftReportStore(MemoryFiles()),
        Baselines({"2": reference(0.0)}),
    )
    assert crossed[0].features[0].verdict == "drift"


def test_masked_and_hashed_fields_are_skipped_with_a_note() -> None:
    store = DriftReportStore(MemoryFiles())
    (report,) = run(records(400), store, Baselines({"1": reference()}, altered={"email"}))
    assert [s.feature for s in report.skipped] == ["email"]
    assert "capture policy" in report.skipped[0].reason
    assert [r.feature for r in report.features] == ["amount", "plan"]
    assert "email" not in report.bins
    assert report.dataset.tested == 2


def test_streaming_merge_equals_one_shot_binning() -> None:
    ref = reference()
    rows = records(1003)
    one_shot = FeatureWindows.from_columns(
        ref,
        {
            "amount": np.array([r.features["amount"] for r in rows], dtype=np.float64),
            "plan": np.array([r.features["plan"] for r in rows], dtype=object),
            "email": np.array(["__missing__"] * len(rows), dtype=object),
        },
        np.array([r.probability for r in rows]),
    )
    accumulator = WindowAccumulator(ref, chunk_rows=97)
    for row in rows:
        accumulator.add(row)
    assert accumulator.result() == one_shot
    assert accumulator.rows == 1003
    small = run(rows, DriftReportStore(MemoryFiles()), Baselines({"1": ref}), chunk_rows=10)
    big = run(rows, DriftReportStore(MemoryFiles()), Baselines({"1": ref}))
    assert small[0].features == big[0].features and small[0].bins == big[0].bins


def test_non_numeric_values_and_unscored_rows_are_noted() -> None:
    ref = reference()
    rows = records(300)
    rows[0] = rows[0].model_copy(update={"features": {**rows[0].features, "amount": "sha256:x"}})
    rows[1] = rows[1].model_copy(update={"probability": float("nan")})
    (report,) = run(rows, DriftReportStore(MemoryFiles()), Baselines({"1": ref}))
    assert report.rows == 299
    assert "1 values of amount were not numbers and were counted as missing" in report.notes
    assert "1 rows without a finite score were left out" in report.notes


def test_records_outside_the_window_are_ignored_and_noted() -> None:
    early = records(50, start=WINDOW_START - HOUR, seed=5)
    (report,) = run(
        early + records(200), DriftReportStore(MemoryFiles()), Baselines({"1": reference()})
    )
    assert report.rows == 200
    assert "50 captured records outside the window were ignored" in report.notes


def test_small_windows_are_reported_as_insufficient_data() -> None:
    (report,) = run(records(40), DriftReportStore(MemoryFiles()), Baselines({"1": reference()}))
    assert {r.verdict for r in report.results} == {"insufficient_data"}
    assert report.dataset.verdict == "insufficient_data"
    assert report.outcome is None and not report.alarm


def test_persistence_uses_the_previous_windows_reports() -> None:
    store = DriftReportStore(MemoryFiles())
    baselines = Baselines({"1": reference()}, altered={"email"})
    verdicts = []
    for hour, drifting in enumerate((True, False, True)):
        start = WINDOW_START + hour * HOUR
        if drifting:
            rows = records(400, start=start, seed=hour, center=3.0, plans=(0.05, 0.15, 0.8))
        else:
            rows = records(400, start=start, seed=hour)
        (report,) = run(rows, store, baselines, at=SCHEDULED + hour * HOUR)
        verdicts.append((report.dataset.verdict, report.persistence.history, report.persistent))
    assert verdicts == [
        ("drift", (None, None, True), False),
        ("no_drift", (None, True, False), False),
        ("drift", (True, False, True), True),  # 2 of the last 3
    ]
    last = store.get(ReportKey("churn", "1", WINDOW_START + 3 * HOUR))
    assert last is not None and last.alarm
    assert set(last.persistence.features) == {"amount", "plan"}


def test_one_version_failing_does_not_stop_the_others() -> None:
    store = DriftReportStore(MemoryFiles())
    rows = records(200, version="1") + records(200, version="9", seed=4)
    with pytest.raises(DriftJobError, match=r"churn v9: model churn version 9 is not stored"):
        run(rows, store, Baselines({"1": reference()}))
    assert store.exists(ReportKey("churn", "1", WINDOW_START + HOUR))


def test_captures_naming_an_unsafe_model_fail_without_touching_paths() -> None:
    bad = [r.model_copy(update={"model_name": "../etc"}) for r in records(5)]
    with pytest.raises(DriftJobError, match="invalid model"):
        run(bad, DriftReportStore(MemoryFiles()), Baselines({"1": reference()}))


# --- the page and the files -----------------------------------------------------------------


def test_html_escapes_every_name() -> None:
    evil = "<script>alert('x')</script>"
    ref = reference()
    ref = ref.model_copy(
        update={"features": {evil: ref.features["amount"], "plan": ref.features["plan"]}}
    )
    rows = [
        r.model_copy(update={"features": {evil: r.features["amount"], "plan": '"><img src=x>'}})
        for r in records(300)
    ]
    (report,) = run(rows, DriftReportStore(MemoryFiles()), Baselines({"1": ref}))
    page = render_html(report)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert page.count("<svg") == 3  # two features and the score
    assert page.startswith("<!doctype html>") and "http" not in page.replace(
        "http://www.w3.org/2000/svg", ""
    )


def test_local_report_files_are_create_only(tmp_path: Path) -> None:
    files = LocalReportFiles(tmp_path)
    assert files.create("drift-reports/m/1/a.json", b"one", "application/json")
    path = tmp_path / "drift-reports/m/1/a.json"
    inode = path.stat().st_ino
    assert not files.create("drift-reports/m/1/a.json", b"two", "application/json")
    assert path.read_bytes() == b"one" and path.stat().st_ino == inode
    assert files.names("drift-reports/") == ["drift-reports/m/1/a.json"]  # no temporary left
    assert files.read("drift-reports/m/1/missing.json") is None
    with pytest.raises(ValueError):
        files.create("../outside.json", b"x", "application/json")


def test_report_keys_round_trip_and_refuse_unsafe_names() -> None:
    key = ReportKey("churn", "12", WINDOW_START)
    assert key.stem == "drift-reports/churn/12/2026-11-27T1000"
    assert ReportKey.parse(f"{key.stem}.json") == key
    assert ReportKey.parse(f"{key.stem}.html") is None
    with pytest.raises(ValueError):
        ReportKey("..", "1", WINDOW_START)


# --- the Lambda handler ---------------------------------------------------------------------


CONTEXT = FakeLambdaContext.of("lambdaserve-dev-drift", aws_request_id="3c1d-request")


SETTINGS = DriftSettings(
    capture_bucket="captures",
    artifact_bucket="artifacts",
    alarm_topic_arn="arn:aws:sns:us-east-1:123456789012:drift",
    capture_mask="email",
)


def handler_with(rows: list[CaptureRecord], topic: FakeTopic, files: MemoryFiles) -> Any:
    ports = DriftPorts(
        captures=source(rows),
        baselines=lambda n, v: Baseline(reference(), SCHEMA, SETTINGS.altered_fields),
        reports=DriftReportStore(files),
        alarms=topic,
        metrics=EmfDriftMetrics(),  # as the wiring builds them on AWS
    )
    return build_handler(ports, drift_schedule(SETTINGS))


def test_handler_reads_the_scheduled_time_and_answers_a_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic, files = FakeTopic(), MemoryFiles()
    shifted = records(400, center=3.0, plans=(0.05, 0.15, 0.8))
    handler = handler_with(shifted, topic, files)
    summary = handler({"time": "2026-11-27T12:05:00Z"}, CONTEXT)
    assert summary["window_start"] == "2026-11-27T10:00:00Z"
    assert summary["window_end"] == "2026-11-27T11:00:00Z"
    (written,) = summary["written"]
    assert written["dataset_verdict"] == "drift" and written["alarm"]
    assert [subject for subject, _ in topic.published] == ["lambdaserve drift: churn v1"]
    document, heartbeat = emf_documents(capsys)
    assert document["model_name"] == "churn" and document["model_version"] == "1"
    assert document["DriftRuns"] == [1.0] and document["DatasetDrift"] == [1.0]
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "lambdaserve"
    assert heartbeat["DriftJobRuns"] == [1.0] and heartbeat["DriftReportsWritten"] == [1.0]
    # A retry of the same schedule writes and alarms nothing, but is a run: the heartbeat beats.
    again = handler({"time": "2026-11-27T12:05:00Z"}, CONTEXT)
    assert again["written"] == [] and len(topic.published) == 1
    (heartbeat,) = emf_documents(capsys)
    assert heartbeat["DriftJobRuns"] == [1.0] and heartbeat["DriftReportsWritten"] == [0.0]


def emf_documents(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = capsys.readouterr().out.splitlines()
    return [json.loads(line) for line in lines if '"_aws"' in line]


def test_a_window_without_traffic_is_still_a_heartbeat(
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = handler_with([], FakeTopic(), MemoryFiles())(
        {"time": "2026-11-27T12:05:00Z"}, CONTEXT
    )
    assert summary["written"] == []
    (heartbeat,) = emf_documents(capsys)
    assert heartbeat["DriftJobRuns"] == [1.0] and heartbeat["DriftReportsWritten"] == [0.0]
    (directive,) = heartbeat["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "lambdaserve"
    assert directive["Dimensions"] == [["service"]] and heartbeat["service"] == "drift"


def test_a_run_of_one_model_beats_by_that_model(capsys: pytest.CaptureFixture[str]) -> None:
    """Each model's schedule names its model: its heartbeat is its own series, which its own
    heartbeat alarm reads (one stopped schedule is not hidden by the other models' runs)."""
    handler_with([], FakeTopic(), MemoryFiles())(
        {"time": "2026-11-27T12:05:00Z", "model_name": "churn"}, CONTEXT
    )
    (heartbeat,) = emf_documents(capsys)
    (directive,) = heartbeat["_aws"]["CloudWatchMetrics"]
    assert [sorted(d) for d in directive["Dimensions"]] == [["model_name", "service"]]
    assert (heartbeat["model_name"], heartbeat["DriftJobRuns"]) == ("churn", [1.0])


class _RefusingTopic(FakeTopic):
    def publish(self, subject: str, message: str) -> str:
        raise DriftJobError("the alarm topic refused the notification (test)")


def test_a_failed_run_is_not_a_heartbeat(capsys: pytest.CaptureFixture[str]) -> None:
    """A well-formed scheduled run that fails part-way (its drifted window's notification is
    refused after the report is stored) raises and does not beat: the heartbeat alarm must see
    the missing run, though the report's own metrics were emitted."""
    files = MemoryFiles()
    shifted = records(400, center=3.0, plans=(0.05, 0.15, 0.8))
    handler = handler_with(shifted, _RefusingTopic(), files)
    with pytest.raises(DriftJobError, match="refused the notification"):
        handler({"time": "2026-11-27T12:05:00Z"}, CONTEXT)
    documents = emf_documents(capsys)
    assert documents, "the stored report's metrics are emitted before the notification"
    assert not [d for d in documents if "DriftJobRuns" in d], "a failed run is not a heartbeat"


def test_handler_refuses_an_event_without_a_scheduled_time() -> None:
    handler = handler_with([], FakeTopic(), MemoryFiles())
    with pytest.raises(DriftJobError, match=r"aws\.scheduler\.scheduled-time"):
        handler({"detail": {}}, CONTEXT)
    with pytest.raises(DriftJobError):
        handler({"time": "2026-11-27T12:05:00"}, CONTEXT)  # no offset: ambiguous


class ModelSources:
    """Captures by model: every model's (``__call__``) and one model's (``of_model``),
    recording which were read."""

    def __init__(self, rows: list[CaptureRecord]) -> None:
        self.rows = rows
        self.read: list[str | None] = []

    def __call__(self, start: datetime, end: datetime) -> Iterator[CaptureRecord]:
        self.read.append(None)
        return iter(self.rows)

    def of_model(self, model: str) -> Any:
        def captures(start: datetime, end: datetime) -> Iterator[CaptureRecord]:
            self.read.append(model)
            return (r for r in self.rows if r.model_name == model)

        return captures


def two_models() -> list[CaptureRecord]:
    churn = records(400, center=3.0, plans=(0.05, 0.15, 0.8))
    fraud = [r.model_copy(update={"model_name": "fraud"}) for r in records(300, seed=2)]
    return churn + fraud


def test_an_event_naming_a_model_judges_only_that_models_captures() -> None:
    sources = ModelSources(two_models())
    ports = DriftPorts(
        captures=sources,
        baselines=lambda n, v: Baseline(reference(), SCHEMA, SETTINGS.altered_fields),
        reports=DriftReportStore(MemoryFiles()),
        model_captures=sources.of_model,
    )
    handler = build_handler(ports, drift_schedule(SETTINGS))
    summary = handler({"time": "2026-11-27T12:05:00Z", "model_name": "fraud"}, CONTEXT)
    assert summary["model_name"] == "fraud"
    assert [(w["model_name"], w["rows"]) for w in summary["written"]] == [("fraud", 300)]
    assert sources.read == ["fraud"], "only the model's own captures were read"
    # Without a model name, every model of the window (fraud's report is already written).
    summary = handler({"time": "2026-11-27T12:05:00Z"}, CONTEXT)
    assert summary["model_name"] is None
    assert [(w["model_name"], w["rows"]) for w in summary["written"]] == [("churn", 400)]
    assert sources.read == ["fraud", None]


def test_without_a_model_source_the_captures_are_filtered_by_model() -> None:
    handler = handler_with(two_models(), FakeTopic(), MemoryFiles())
    summary = handler({"time": "2026-11-27T12:05:00Z", "model_name": "churn"}, CONTEXT)
    assert [(w["model_name"], w["rows"]) for w in summary["written"]] == [("churn", 400)]


@pytest.mark.parametrize("bad", ["../etc", "", "a/b", "-x", "x" * 65, 7])
def test_an_event_with_an_invalid_model_name_is_refused_clearly(bad: object) -> None:
    handler = handler_with(two_models(), FakeTopic(), MemoryFiles())
    with pytest.raises(DriftJobError, match=r"the event's model_name .* is not a model name") as e:
        handler({"time": "2026-11-27T12:05:00Z", "model_name": bad}, CONTEXT)
    assert "omit it to judge every model" in str(e.value)
    assert "scheduled-time" not in str(e.value), "the time was fine"
    with pytest.raises(DriftJobError, match=r"not a model name.*aws\.scheduler\.scheduled-time"):
        handler({"model_name": bad}, CONTEXT)  # both wrong: both said


def test_settings_read_capture_policy_names_and_refuse_bad_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "CAPTURE_BUCKET": "captures",
        "ARTIFACT_BUCKET": "artifacts",
        "ALARM_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:drift",
        "CAPTURE_MASK": "email, phone",
        "CAPTURE_HASH": '["customer_id"]',
        "WINDOW_MINUTES": "30",
    }.items():
        monkeypatch.setenv(name, value)
    settings = DriftSettings()
    assert settings.altered_fields == {"email", "phone", "customer_id"}
    assert (settings.window_minutes, settings.lateness_minutes, settings.min_samples) == (
        30,
        15,
        100,
    )
    monkeypatch.setenv("WINDOW_MINUTES", "7")
    with pytest.raises(ValidationError, match="divide a day"):
        DriftSettings()
