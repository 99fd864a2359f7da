"""Traffic the demo sends: real rows, a batch, and bad requests that must be refused cleanly."""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import httpx
from rich.progress import Progress

from lambdaserve.views.console import err


@dataclass
class TrafficReport:
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    unseen_flagged: int = 0
    failed_expectations: list[str] = field(default_factory=list)

    def record(self, endpoint: str, status: int, seconds: float) -> None:
        self.statuses[endpoint][status] += 1
        self.latencies_ms[endpoint].append(seconds * 1000)

    def percentile(self, endpoint: str, q: int) -> float:
        values = self.latencies_ms[endpoint]
        return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


@dataclass(frozen=True)
class BadRequest:
    description: str
    path: str
    body: bytes
    expected_status: int


def _post(client: httpx.Client, report: TrafficReport, path: str, content: bytes) -> httpx.Response:
    started = time.perf_counter()
    response = client.post(path, content=content, headers={"content-type": "application/json"})
    report.record(path, response.status_code, time.perf_counter() - started)
    return response


def bad_requests(
    row: dict[str, object], max_batch_rows: int, max_body_bytes: int
) -> list[BadRequest]:
    numeric = next(k for k, v in row.items() if isinstance(v, float))
    first = next(iter(row))

    def features(**changes: object) -> bytes:
        return json.dumps({"features": {**row, **changes}}).encode()

    missing = {k: v for k, v in row.items() if k != first}
    return [
        BadRequest("number sent as text", "/predict", features(**{numeric: "twelve"}), 422),
        BadRequest("missing column", "/predict", json.dumps({"features": missing}).encode(), 422),
        BadRequest("unknown column", "/predict", features(not_a_feature=1), 422),
        BadRequest(
            "NaN is not a number",
            "/predict",
            features().replace(json.dumps(row[numeric]).encode(), b"NaN", 1),
            422,
        ),
        BadRequest("body is not JSON", "/predict", b"{not json", 422),
        BadRequest(
            "batch over the row bound",
            "/predict/batch",
            json.dumps({"instances": [row] * (max_batch_rows + 1)}).encode(),
            422,
        ),
        BadRequest("body over the byte cap", "/predict/batch", b" " * (max_body_bytes + 1), 413),
    ]


def send_traffic(
    base_url: str,
    rows: list[dict[str, object]],
    *,
    unseen_column: str | None,
    max_batch_rows: int,
    max_body_bytes: int,
    batch_size: int = 200,
) -> TrafficReport:
    report = TrafficReport()
    bad = bad_requests(rows[0], max_batch_rows, max_body_bytes)
    singles = rows[:300]
    batches = [rows[i : i + batch_size] for i in range(300, len(rows), batch_size)]
    total = len(singles) + len(batches) + len(bad) + (1 if unseen_column else 0)
    with (
        httpx.Client(base_url=base_url, timeout=60) as client,
        Progress(console=err, transient=True) as bar,
    ):
        task = bar.add_task("sending traffic", total=total)
        for row in singles:
            response = _post(client, report, "/predict", json.dumps({"features": row}).encode())
            if response.status_code != 200:
                report.failed_expectations.append(f"a valid row got {response.status_code}")
            bar.advance(task)
        for batch in batches:
            response = _post(
                client, report, "/predict/batch", json.dumps({"instances": batch}).encode()
            )
            if response.status_code != 200 or len(response.json()["predictions"]) != len(batch):
                report.failed_expectations.append(f"a valid batch got {response.status_code}")
            bar.advance(task)
        if unseen_column:
            body = json.dumps({"features": {**rows[0], unseen_column: "never-seen-before"}})
            response = _post(client, report, "/predict", body.encode())
            if (
                response.status_code == 200
                and unseen_column in response.json()["unseen_categories"]
            ):
                report.unseen_flagged += 1
            else:
                report.failed_expectations.append("an unseen category was not flagged")
            bar.advance(task)
        for case in bad:
            response = _post(client, report, case.path, case.body)
            detail = response.text
            if response.status_code != case.expected_status:
                report.failed_expectations.append(
                    f"{case.description}: expected {case.expected_status}, "
                    f"got {response.status_code}"
                )
            elif "Traceback" in detail:
                report.failed_expectations.append(f"{case.description}: response shows a traceback")
            bar.advance(task)
    return report
