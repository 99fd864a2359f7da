"""The drift job for real: churn traffic captured by the local capture log (shift 0, then the
dataset's known shift), judged through ``lambdaserve drift run`` against the bundle's own
reference; and the AWS path (S3 partitions, S3 artifact store, create-only reports, SNS) on a
moto server on loopback."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from lambdaserve.aws.clients import aws_client
from lambdaserve.aws.s3_artifact_store import S3ArtifactStore
from lambdaserve.aws.s3_drift_io import S3CaptureReader, S3ReportFiles
from lambdaserve.cli.main import app
from lambdaserve.datasets import churn
from lambdaserve.drift.job import DriftJobError, bundle_baselines, run_drift
from lambdaserve.drift.lambda_job import LambdaHandler, build_handler
from lambdaserve.drift.report import DriftReport
from lambdaserve.drift.report_store import DriftReportStore
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.capture import CaptureRecord, FeedbackRecord, partition, stream_line
from lambdaserve.kernel.csv_rows import feature_rows
from lambdaserve.kernel.encoding import rows_to_columns
from lambdaserve.kernel.prediction_ids import new_prediction_id
from lambdaserve.kernel.predictors import load_predictor
from lambdaserve.local.artifact_store import LocalArtifactStore
from lambdaserve.local.capture_log import CaptureLog, capture_line
from lambdaserve.wiring.aws_drift import DriftSettings, drift_ports, drift_schedule
from tests.integration.moto_server import new_bucket, object_versions
from tests.support.lambda_context import FakeLambdaContext

pytestmark = pytest.mark.integration
runner = CliRunner()
ROWS = 2500
HOUR = timedelta(hours=1)
BASELINE_START = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # shift 0 traffic
SHIFTED_START = BASELINE_START + HOUR  # shift 1.0 traffic
JUDGE_BASELINE = "2026-11-27T12:05:00Z"  # window 10:00-11:00 (lateness 15 min)
JUDGE_SHIFTED = "2026-11-27T13:05:00Z"  # window 11:00-12:00
CONTEXT = FakeLambdaContext.of("lambdaserve-dev-drift", aws_request_id="9f1e-request")


def captured(
    bundle: VerifiedBundle, *, shift: float, seed: int, start: datetime
) -> list[CaptureRecord]:
    """Fresh churn traffic as the predict function captures it, spread over one hour."""
    schema = bundle.manifest.features
    frame = churn.generate_churn(ROWS, seed=seed, shift=shift)
    text_rows = (
        {name: "" if pd.isna(value) else str(value) for name, value in record.items()}
        for record in frame.to_dict(orient="records")
    )
    rows = list(feature_rows(schema, text_rows))
    scores = load_predictor(bundle).predict_proba(rows_to_columns(schema, rows))
    step = HOUR / ROWS
    return [
        CaptureRecord(
            captured_at=start + i * step,
            prediction_id=f"{seed}-{i:06d}",
            model_name=bundle.manifest.name,
            model_version=bundle.manifest.version,
            bundle_sha256=bundle.digest,
            function_version="1",
            features=row,
            probability=float(score),
            label=bundle.manifest.positive_class
            if score >= bundle.manifest.decision_threshold
            else bundle.manifest.negative_class,
            latency_ms=0.5,
        )
        for i, (row, score) in enumerate(zip(rows, scores, strict=True))
    ]


@pytest.fixture(scope="module")
def traffic(churn_bundle: VerifiedBundle) -> dict[str, list[CaptureRecord]]:
    return {
        "baseline": captured(churn_bundle, shift=0.0, seed=101, start=BASELINE_START),
        "shifted": captured(churn_bundle, shift=1.0, seed=102, start=SHIFTED_START),
    }


def local_store(root: Path, bundle: VerifiedBundle, records: list[CaptureRecord]) -> Path:
    LocalArtifactStore(root).put(bundle.path)
    log = CaptureLog(root)
    try:
        log.write(records)
    finally:
        log.close()
    return root


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory,
    churn_bundle: VerifiedBundle,
    traffic: dict[str, list[CaptureRecord]],
) -> Path:
    root = tmp_path_factory.mktemp("drift-store")
    return local_store(root, churn_bundle, traffic["baseline"] + traffic["shifted"])


def drift_cli(*args: str) -> Any:
    return runner.invoke(app, ["drift", *args], catch_exceptions=False)


def report_files(root: Path) -> dict[str, tuple[int, int]]:
    """Every report file with its inode and mtime (ns)."""
    return {
        path.relative_to(root).as_posix(): (path.stat().st_ino, path.stat().st_mtime_ns)
        for path in sorted((root / "drift-reports").rglob("*"))
        if path.is_file()
    }


def stored_report(root: Path, stamp: str) -> DriftReport:
    path = root / "drift-reports" / "churn" / "1" / f"{stamp}.json"
    return DriftReport.model_validate_json(path.read_bytes())


def test_drift_run_flags_exactly_the_shifted_features(
    store: Path, churn_bundle: VerifiedBundle
) -> None:
    names = set(churn_bundle.manifest.features.names)
    shifted = set(churn.SHIFTED_FEATURES) & names
    assert shifted == {"monthly_charges", "total_charges", "num_support_tickets", "contract"}

    result = drift_cli("run", "--at", JUDGE_BASELINE, "--store", str(store))
    assert result.exit_code == 0, result.output
    assert "2026-11-27T10:00:00+00:00 to 2026-11-27T11:00:00+00:00" in result.output
    baseline = stored_report(store, "2026-11-27T1100")
    assert baseline.rows == ROWS
    assert {r.feature: r.verdict for r in baseline.features} == dict.fromkeys(names, "no_drift")
    assert baseline.score.verdict == "no_drift"
    assert baseline.dataset.verdict == "no_drift" and not baseline.alarm

    result = drift_cli("run", "--at", JUDGE_SHIFTED, "--store", str(store))
    report = stored_report(store, "2026-11-27T1200")
    assert report.rows == ROWS
    flagged = {r.feature for r in report.features if r.verdict == "drift"}
    assert flagged == shifted - {"total_charges"}, {r.feature: r.message for r in report.features}
    assert report.score.verdict == "drift"  # shifted customers churn more
    # total_charges = tenure * monthly_charges: +20 on monthly charges scales it by ~1.3 within
    # a very wide (tenure-driven) spread, so its deciles barely move: PSI ~0.06, under 0.2 (and
    # under the usual 0.1 "moderate" mark). It is detected, as significant but small: its
    # chi-square survives Benjamini-Hochberg, and its PSI is far above every unshifted feature's.
    psi = {r.feature: r.score or 0.0 for r in report.features if r.test == "psi"}
    assert "total_charges" in report.fdr_drifted and set(report.fdr_drifted) >= shifted
    assert psi["total_charges"] > 3 * max(psi[f] for f in set(psi) - shifted)
    # (fdr_drifted also names some unshifted features, in both windows: core's chi2_p_value
    # takes the reference proportions as exact, but they come from a 2,400-row sample, so with
    # windows of that size its p-values are far too small. The PSI/JS verdicts above are exact.)
    # 3 of 14 features drifted: under the share rule's half, so no dataset alarm (exit 0).
    assert report.dataset.verdict == "no_drift"
    assert result.exit_code == 0, result.output
    assert "num_support_tickets" in result.output and "written" in result.output
    assert report.persistence.history == (None, False, False)


def test_rerun_rewrites_nothing_and_show_prints_the_report(store: Path, tmp_path: Path) -> None:
    # Both windows, whichever tests of this module ran before on this worker (a rerun of a
    # window already judged writes nothing, so this is the same when they did).
    for at in (JUDGE_BASELINE, JUDGE_SHIFTED):
        drift_cli("run", "--at", at, "--store", str(store))
    before = report_files(store)
    assert set(before) == {
        f"drift-reports/churn/1/{stamp}.{suffix}"
        for stamp in ("2026-11-27T1100", "2026-11-27T1200")
        for suffix in ("json", "html")
    }
    result = drift_cli("run", "--at", JUDGE_SHIFTED, "--store", str(store))
    assert result.exit_code == 0
    assert "already written" in result.output
    assert report_files(store) == before  # same inodes, same mtimes

    page = tmp_path / "report.html"
    result = drift_cli("show", "churn:1", "--store", str(store), "--html", str(page))
    assert result.exit_code == 0, result.output
    assert "11:00 to 2026-11-27 12:00" in result.output  # the latest window only
    assert "10:00 to" not in result.output
    assert "monthly_charges" in result.output and "drift" in result.output
    html = page.read_text()
    assert html.startswith("<!doctype html>") and html.count("<svg") == 15  # 14 + score
    assert drift_cli("show", "--latest", "--store", str(store)).exit_code == 0
    missing = drift_cli("show", "other", "--store", str(store))
    assert missing.exit_code == 1


def test_dataset_drift_exits_7_and_skipped_fields_are_noted(
    tmp_path: Path, churn_bundle: VerifiedBundle, traffic: dict[str, list[CaptureRecord]]
) -> None:
    root = local_store(tmp_path / "store", churn_bundle, traffic["shifted"])
    unshifted = sorted(set(churn_bundle.manifest.features.names) - set(churn.SHIFTED_FEATURES))
    skipped = unshifted[:8]  # as if the capture policy masked them: 3 of the 6 left drift
    args = [f"--skip={name}" for name in skipped]
    result = drift_cli("run", "--at", JUDGE_SHIFTED, "--store", str(root), *args)
    assert result.exit_code == 7, result.output
    report = stored_report(root, "2026-11-27T1200")
    assert report.dataset.verdict == "drift" and report.alarm
    assert [s.feature for s in report.skipped] == [
        n for n in churn_bundle.manifest.features.names if n in skipped
    ]
    assert "skipped" in result.output
    # An empty window says so and exits 0.
    empty = drift_cli("run", "--at", "2026-11-28T12:05:00Z", "--store", str(root))
    assert empty.exit_code == 0 and "no captured predictions" in empty.output


def renamed(records: list[CaptureRecord], model: str) -> list[CaptureRecord]:
    """The same traffic as captured by another model (one without a bundle in the store)."""
    return [r.model_copy(update={"model_name": model}) for r in records]


def test_drift_run_of_one_model_reads_only_its_captures(
    tmp_path: Path, churn_bundle: VerifiedBundle, traffic: dict[str, list[CaptureRecord]]
) -> None:
    shifted = traffic["shifted"]
    root = local_store(tmp_path / "store", churn_bundle, shifted + renamed(shifted, "fraud"))
    assert sorted(p.name for p in (root / "captures").iterdir()) == ["model=churn", "model=fraud"]

    result = drift_cli("run", "--at", JUDGE_SHIFTED, "--model", "churn", "--store", str(root))
    assert result.exit_code == 0, result.output  # fraud (no bundle) was not judged
    assert stored_report(root, "2026-11-27T1200").rows == ROWS
    assert "fraud" not in result.output
    every = drift_cli("run", "--at", JUDGE_SHIFTED, "--store", str(root))
    assert every.exit_code == 1 and "fraud v1" in every.output
    bad = drift_cli("run", "--at", JUDGE_SHIFTED, "--model", "../x", "--store", str(root))
    assert bad.exit_code == 2 and "not a model name" in bad.output


# --- AWS: S3 partitions, S3 artifact store, create-only reports, SNS on moto -------------------


def upload_captures(s3: Any, bucket: str, records: list[CaptureRecord]) -> None:
    """One object per hour partition, the first gzipped, with one line that is not a record,
    and one feedback line (feedback travels in the same stream)."""
    parts: dict[str, list[str]] = {}
    for record in records:
        lines = parts.setdefault(partition(record.captured_at, record.model_name), [])
        if not lines:
            outcome = FeedbackRecord(
                received_at=record.captured_at,
                prediction_id=new_prediction_id(),  # these captures carry test ids
                model_name=record.model_name,
                label=record.label,
            )
            lines.append(stream_line(outcome))
        lines.append(capture_line(record))
    for index, (prefix, lines) in enumerate(sorted(parts.items())):
        body = ("".join(lines) + '{"not": "a capture"}\n').encode()
        if index == 0:
            s3.put_object(Bucket=bucket, Key=f"{prefix}/part-0.gz", Body=gzip.compress(body))
        else:
            s3.put_object(Bucket=bucket, Key=f"{prefix}/part-0", Body=body)


def test_s3_path_writes_the_report_once(
    moto_endpoint: str,
    tmp_path: Path,
    churn_bundle: VerifiedBundle,
    traffic: dict[str, list[CaptureRecord]],
) -> None:
    s3 = aws_client("s3", endpoint_url=moto_endpoint)
    artifacts, captures = new_bucket(s3), new_bucket(s3, versioning=None)
    S3ArtifactStore(artifacts, client=s3, cache_dir=tmp_path / "cache").put(churn_bundle.path)
    upload_captures(s3, captures, traffic["shifted"])
    reader = S3CaptureReader(captures, client=s3)

    def judge() -> list[DriftReport]:
        return run_drift(
            datetime.fromisoformat(JUDGE_SHIFTED),
            captures=reader,
            references=bundle_baselines(
                S3ArtifactStore(artifacts, client=s3, cache_dir=tmp_path / "cache")
            ),
            reports=DriftReportStore(S3ReportFiles(artifacts, client=s3)),
        )

    (report,) = judge()
    # Feedback lines are neither captures nor invalid lines to the drift job.
    assert report.rows == ROWS and reader.invalid_lines == 1
    flagged = {r.feature for r in report.features if r.drifted}
    assert flagged == {"monthly_charges", "num_support_tickets", "contract"}
    reports = [v for v in object_versions(s3, artifacts) if v[0].startswith("drift-reports/")]
    assert [key for key, _ in reports] == [
        "drift-reports/churn/1/2026-11-27T1200.html",
        "drift-reports/churn/1/2026-11-27T1200.json",
    ]
    start = min(r.captured_at for r in traffic["shifted"])
    feedback = list(reader.feedback(start, max(r.captured_at for r in traffic["shifted"])))
    assert feedback and all(f.model_name == "churn" for f in feedback)
    assert judge() == []
    assert [v for v in object_versions(s3, artifacts) if v[0].startswith("drift-reports/")] == (
        reports
    )
    stored = s3.get_object(Bucket=artifacts, Key="drift-reports/churn/1/2026-11-27T1200.json")
    assert DriftReport.model_validate_json(stored["Body"].read()) == report


def test_lambda_handler_on_moto_alarms_once_through_sns(
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    churn_bundle: VerifiedBundle,
    traffic: dict[str, list[CaptureRecord]],
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    s3, sns, sqs = aws_client("s3"), aws_client("sns"), aws_client("sqs")
    artifacts, captures = new_bucket(s3), new_bucket(s3, versioning=None)
    S3ArtifactStore(artifacts).put(churn_bundle.path)
    upload_captures(s3, captures, traffic["shifted"])
    topic = sns.create_topic(Name="drift-alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName="drift-alarms")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    unshifted = sorted(set(churn_bundle.manifest.features.names) - set(churn.SHIFTED_FEATURES))
    settings = DriftSettings(
        capture_bucket=captures,
        artifact_bucket=artifacts,
        alarm_topic_arn=topic,
        capture_mask=",".join(unshifted[:8]),
    )
    handler = aws_handler(settings)

    summary = handler({"time": JUDGE_SHIFTED}, CONTEXT)
    assert summary["window_end"] == "2026-11-27T12:00:00Z"
    assert summary["invalid_capture_lines"] == 1
    (written,) = summary["written"]
    assert written["dataset_verdict"] == "drift" and written["alarm"]
    assert handler({"time": JUDGE_SHIFTED}, CONTEXT)["written"] == []

    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    bodies = [json.loads(m["Body"]) for m in messages.get("Messages", [])]
    assert [b["Subject"] for b in bodies] == ["lambdaserve drift: churn v1"]
    assert "dataset drift: 3 of 6 features drifted" in bodies[0]["Message"]


def test_lambda_event_naming_a_model_judges_only_its_partitions(
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    churn_bundle: VerifiedBundle,
    traffic: dict[str, list[CaptureRecord]],
) -> None:
    """Two models' captures in the bucket, one bundle: the schedule of churn judges churn (its
    invalid lines counted, fraud's never read); the schedule of every model fails on fraud."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    s3, sns = aws_client("s3"), aws_client("sns")
    artifacts, captures = new_bucket(s3), new_bucket(s3, versioning=None)
    S3ArtifactStore(artifacts).put(churn_bundle.path)
    shifted = traffic["shifted"]
    upload_captures(s3, captures, shifted + renamed(shifted, "fraud"))
    topic = sns.create_topic(Name="drift-alarms-per-model")["TopicArn"]
    settings = DriftSettings(
        capture_bucket=captures, artifact_bucket=artifacts, alarm_topic_arn=topic
    )
    handler = aws_handler(settings)

    summary = handler({"time": JUDGE_SHIFTED, "model_name": "churn"}, CONTEXT)
    assert summary["model_name"] == "churn"
    assert [(w["model_name"], w["rows"]) for w in summary["written"]] == [("churn", ROWS)]
    assert summary["invalid_capture_lines"] == 1, "churn's one partition; fraud's not read"
    with pytest.raises(DriftJobError, match=r"fraud v1: .*; 0 report\(s\) were written"):
        handler({"time": JUDGE_SHIFTED}, CONTEXT)
    with pytest.raises(DriftJobError, match="is not a model name"):
        handler({"time": JUDGE_SHIFTED, "model_name": "fraud/../churn"}, CONTEXT)


def test_a_failed_notification_keeps_the_report_and_fails_the_run(
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    churn_bundle: VerifiedBundle,
    traffic: dict[str, list[CaptureRecord]],
) -> None:
    """SNS refuses the alarm (here: the topic is gone; on AWS: a KMS key the role may not use).
    The report is stored first, the run still fails loudly (the Errors alarm), and a retry
    finds the report: the k-of-n history keeps the drifted window."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    s3, sns = aws_client("s3"), aws_client("sns")
    artifacts, captures = new_bucket(s3), new_bucket(s3, versioning=None)
    S3ArtifactStore(artifacts).put(churn_bundle.path)
    upload_captures(s3, captures, traffic["shifted"])
    topic = sns.create_topic(Name="drift-alarms-gone")["TopicArn"]
    sns.delete_topic(TopicArn=topic)
    unshifted = sorted(set(churn_bundle.manifest.features.names) - set(churn.SHIFTED_FEATURES))
    settings = DriftSettings(
        capture_bucket=captures,
        artifact_bucket=artifacts,
        alarm_topic_arn=topic,
        capture_mask=",".join(unshifted[:8]),  # as above: enough drifted features to alarm
    )
    handler = aws_handler(settings)

    with pytest.raises(
        DriftJobError, match=r"churn v1: its report was stored, but could not publish"
    ):
        handler({"time": JUDGE_SHIFTED}, CONTEXT)

    stored = s3.get_object(Bucket=artifacts, Key="drift-reports/churn/1/2026-11-27T1200.json")
    report = DriftReport.model_validate_json(stored["Body"].read())
    assert report.dataset.verdict == "drift" and report.alarm
    assert handler({"time": JUDGE_SHIFTED}, CONTEXT)["written"] == []


def aws_handler(settings: DriftSettings) -> LambdaHandler:
    """The drift function as ``functions/drift/handler.py`` builds it, over moto's server."""
    return build_handler(drift_ports(settings), drift_schedule(settings))
