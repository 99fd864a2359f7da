"""The demo's drift chapter: shifted traffic through the gateway to the live champion, then the
drift job over today's window; the report must flag the shifted features and not the others."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

import httpx

from lambdaserve.datasets import churn
from lambdaserve.drift.report import DriftReport
from lambdaserve.drift.scheduled import DriftSchedule, run_scheduled_drift
from lambdaserve.drift.statistics import DriftResult
from lambdaserve.kernel.csv_rows import feature_rows
from lambdaserve.kernel.schema import FeatureSchema
from lambdaserve.serving.background_server import serve_in_thread
from lambdaserve.serving.settings import ServingSettings
from lambdaserve.views.console import out
from lambdaserve.views.drift import print_report
from lambdaserve.wiring.local import LocalBackend

DAY = timedelta(days=1)
LATENESS = timedelta(minutes=15)
SCORE = "__score__"


def _send_shifted(backend: LocalBackend, rows: int, seed: int) -> str:
    path = churn.write_churn_csv(
        backend.root / "demo" / "churn-shifted.csv", rows, seed=seed, shift=1.0
    )
    gateway = backend.gateway("predict", ServingSettings())
    with serve_in_thread(gateway) as url, httpx.Client(base_url=url, timeout=60) as client:
        schema_source = client.get("/model").json()
        schema = FeatureSchema.model_validate({"features": schema_source["features"]})
        with path.open(newline="") as handle:
            instances = list(feature_rows(schema, csv.DictReader(handle)))
        for start in range(0, len(instances), 500):
            response = client.post(
                "/predict/batch", json={"instances": instances[start : start + 500]}
            )
            response.raise_for_status()
    return f"{schema_source['name']} v{schema_source['version']}"


def flagged(report: DriftReport) -> set[str]:
    results: list[DriftResult] = [*report.features, report.score]
    return {r.feature for r in results if r.verdict == "drift"}


def run_drift_chapter(
    backend: LocalBackend, model_name: str, *, rows: int = 20000, seed: int = 3
) -> list[DriftReport]:
    """Shifted traffic to the live model, then the drift job of ``model_name`` alone (only its
    captures are read: other models of an earlier run over the same store are not judged);
    its new reports."""
    served_by = _send_shifted(backend, rows, seed)
    out.print(
        f"sent {rows} rows of shifted traffic (shift=1.0 on {', '.join(churn.SHIFTED_FEATURES)})"
        f" to the live champion ({served_by})",
        highlight=False,
    )
    now = datetime.now(UTC)
    # A day window so the demo's captures all fall in one window; scheduled after its end.
    scheduled = datetime(now.year, now.month, now.day, tzinfo=UTC) + DAY + LATENESS
    ports = backend.drift_ports()  # the same use case as `drift run` and the drift Lambda
    schedule = DriftSchedule(window=DAY, lateness=LATENESS)
    written = run_scheduled_drift(scheduled, ports, schedule, model_name=model_name).written
    for report in written:
        print_report(report, state="written")
    return written
