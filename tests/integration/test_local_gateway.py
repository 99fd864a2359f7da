"""The local gateway on loopback: the live alias's weights, sticky units, the request log, the
local guard, and ``lambdaserve serve`` choosing the gateway when a live alias exists."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.function_versions import AliasRouting
from lambdaserve.local.artifact_store import LocalArtifactStore
from lambdaserve.local.function_versions import LocalFunctionVersions
from lambdaserve.local.gateway import create_gateway
from lambdaserve.local.local_guard import LocalGuard
from lambdaserve.local.request_log import RequestLog, RequestRecord, read_records, signals_since
from lambdaserve.rollout.plan import RolloutPlan
from lambdaserve.rollout.state import RolloutState, VersionRef
from lambdaserve.rollout.traffic_assignment import choose_version
from lambdaserve.serving.background_server import free_port, serve_in_thread
from lambdaserve.serving.settings import ServingSettings

pytestmark = pytest.mark.integration

Row = dict[str, Any]
BAD_BODY: dict[str, Row] = {"features": {}}
CLI = [sys.executable, "-m", "lambdaserve.cli"]


@dataclass(frozen=True)
class Deployment:
    root: Path
    functions: LocalFunctionVersions

    def route(self, additional: dict[str, float]) -> AliasRouting:
        current = self.functions.alias("live")
        assert current is not None
        return self.functions.update_alias("live", "1", additional, current.revision_id)


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
    churn_bundle: VerifiedBundle,
    churn_hgb_bundle: VerifiedBundle,
) -> Deployment:
    """Model versions 1 (ONNX forest) and 2 (scikit-learn HGB) published as function versions 1
    and 2; the live alias sends everything to version 1."""
    store = LocalArtifactStore(tmp_path_factory.mktemp("gateway") / "store")
    functions = LocalFunctionVersions(store.root)
    for bundle in (churn_bundle, churn_hgb_bundle):
        stored = store.put(bundle.path)
        published = functions.publish(
            bundle_uri=stored.uri,
            bundle_sha256=stored.digest,
            description=f"{stored.name} model version {stored.version}",
        )
        assert published.function_version == stored.version
    functions.create_alias("live", "1")
    return Deployment(store.root, functions)


@pytest.fixture(scope="module")
def gateway(deployment: Deployment) -> Iterator[httpx.Client]:
    app = create_gateway(deployment.root, settings=ServingSettings(), rng=random.Random(2026))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def predict(client: httpx.Client, row: Row, unit: str | None = None) -> httpx.Response:
    headers = {"X-Unit-Id": unit} if unit is not None else {}
    return client.post("/predict", json={"features": row}, headers=headers)


def within_bound(hits: int, n: int, weight: float) -> bool:
    return abs(hits / n - weight) <= 4 * math.sqrt(weight * (1 - weight) / n)


def units_on(routing: AliasRouting, version: str, count: int) -> list[str]:
    units = (f"unit-{i}" for i in range(10_000))
    return [u for u in units if choose_version(routing, unit_id=u) == version][:count]


def test_everything_goes_to_the_primary_version(
    gateway: httpx.Client, deployment: Deployment, traffic_rows: list[Row]
) -> None:
    deployment.route({})
    for row in traffic_rows[:30]:
        response = predict(gateway, row)
        assert response.status_code == 200
        assert response.headers["x-function-version"] == "1"
        assert response.json()["model"]["version"] == "1"


def test_new_weights_are_followed_without_restart(
    gateway: httpx.Client, deployment: Deployment, traffic_rows: list[Row]
) -> None:
    deployment.route({"2": 0.3})
    n, served = 400, Counter[str]()
    for i in range(n):
        response = predict(gateway, traffic_rows[i % len(traffic_rows)])
        assert response.status_code == 200
        version = response.headers["x-function-version"]
        assert response.headers["x-model-version"] == response.json()["model"]["version"]
        assert response.json()["model"]["version"] == version  # function v1 pins model v1, ...
        served[version] += 1
    assert set(served) == {"1", "2"}
    print(f"share of version 2 at weight 0.3: {served['2'] / n:.3f} over {n} requests")
    assert within_bound(served["2"], n, 0.3), served


def test_a_unit_keeps_its_version(
    gateway: httpx.Client, deployment: Deployment, traffic_rows: list[Row]
) -> None:
    routing = deployment.route({"2": 0.5})
    units = ["alice", "bob", *units_on(routing, "1", 2), *units_on(routing, "2", 2)]
    for unit in units:
        served = {
            predict(gateway, row, unit).headers["x-function-version"] for row in traffic_rows[:20]
        }
        assert served == {choose_version(routing, unit_id=unit)}, unit


def test_the_request_log_has_one_line_per_request(
    gateway: httpx.Client, deployment: Deployment, traffic_rows: list[Row]
) -> None:
    deployment.route({"2": 0.5})
    since = datetime.now(UTC)
    expected: Counter[tuple[str, str, int]] = Counter()
    scored: Counter[str] = Counter()
    for row in traffic_rows[:40]:
        response = predict(gateway, row)
        expected[response.headers["x-function-version"], "/predict", 200] += 1
        scored[response.headers["x-function-version"]] += 1
    for _ in range(10):
        response = gateway.post("/predict", json=BAD_BODY)
        assert response.status_code == 422
        expected[response.headers["x-function-version"], "/predict", 422] += 1
    batch = gateway.post("/predict/batch", json={"instances": traffic_rows[:7]})
    expected[batch.headers["x-function-version"], "/predict/batch", 200] += 1
    scored[batch.headers["x-function-version"]] += 7
    health = gateway.get("/health")
    expected[health.headers["x-function-version"], "/health", 200] += 1

    records = list(read_records(deployment.root, "predict", since))
    assert Counter((r.function_version, r.path, r.status) for r in records) == expected
    assert all(r.model_version == r.function_version for r in records)
    assert all(r.latency_ms > 0 for r in records)
    assert {r.rows for r in records if r.path == "/predict/batch"} == {7}
    parts = list((deployment.root / "metrics" / "predict").glob("dt=*/hour=*/part-*.jsonl"))
    assert parts
    lines = [json.loads(line) for part in parts for line in part.read_text().splitlines()]
    assert {"ts", "function_version", "model_version", "path", "status"} <= set(lines[-1])

    signals = signals_since(deployment.root, "predict", since, ["1", "2"])
    for version in ("1", "2"):
        # Only prediction requests count toward a version's signals (not the health check).
        mine = {k: v for k, v in expected.items() if k[0] == version and k[1] != "/health"}
        assert signals[version].requests == sum(mine.values())
        assert signals[version].invalid_inputs == sum(v for k, v in mine.items() if k[2] == 422)
        assert signals[version].server_errors == 0
        assert len(signals[version].scores) == scored[version]
        assert all(0.0 <= s <= 1.0 for s in signals[version].scores)


def test_a_bad_request_is_an_invalid_input_of_the_version_that_served_it(
    gateway: httpx.Client, deployment: Deployment
) -> None:
    routing = deployment.route({"2": 0.5})
    for version in ("1", "2"):
        (unit,) = units_on(routing, version, 1)
        since = datetime.now(UTC)
        response = gateway.post("/predict", json=BAD_BODY, headers={"X-Unit-Id": unit})
        assert response.status_code == 422
        assert response.headers["x-function-version"] == version
        signals = signals_since(deployment.root, "predict", since, ["1", "2"])
        assert signals[version].invalid_inputs == signals[version].requests == 1
        assert sum(s.requests for s in signals.values()) == 1


def test_local_guard_flags_a_challenger_fed_bad_requests(
    gateway: httpx.Client, deployment: Deployment, traffic_rows: list[Row]
) -> None:
    routing = deployment.route({"2": 0.5})
    champion_units, challenger_units = units_on(routing, "1", 5), units_on(routing, "2", 5)
    guard = LocalGuard(deployment.root, "predict")

    def state(since: datetime) -> RolloutState:
        return RolloutState(
            model_name="churn",
            function_name="predict",
            champion=VersionRef(model_version="1", function_version="1"),
            challenger=VersionRef(model_version="2", function_version="2"),
            plan=RolloutPlan(kind="canary", weights=(0.5,), interval_seconds=0),
            step_started_at=since,
            routing={"1": 0.5, "2": 0.5},
        )

    clean_since = datetime.now(UTC)
    for i, row in enumerate(traffic_rows[:30]):
        predict(gateway, row, champion_units[i % 5])
        predict(gateway, row, challenger_units[i % 5])
    clean = guard.evaluate(state(clean_since), datetime.now(UTC))
    assert clean.challenger_samples == 30
    assert not any("invalid-input" in alarm for alarm in clean.alarms), clean.alarms

    since = datetime.now(UTC)
    for i, row in enumerate(traffic_rows[:30]):
        assert predict(gateway, row, champion_units[i % 5]).status_code == 200
    for i in range(20):
        unit = challenger_units[i % 5]
        if i % 4:
            response = gateway.post("/predict", json=BAD_BODY, headers={"X-Unit-Id": unit})
        else:
            response = predict(gateway, traffic_rows[i], unit)
        assert response.headers["x-function-version"] == "2"
    report = guard.evaluate(state(since), datetime.now(UTC))
    assert report.challenger_samples == 20
    assert any("invalid-input rate 75.0% vs champion 0.0%" in a for a in report.alarms), report


def test_no_alias_is_a_503_then_a_broken_version_is_its_own_503(tmp_path: Path) -> None:
    app = create_gateway(tmp_path / "store", settings=ServingSettings())
    with serve_in_thread(app) as url:
        response = httpx.get(f"{url}/health")
        assert response.status_code == 503
        assert "has no 'live' alias" in response.json()["detail"]

        functions = LocalFunctionVersions(tmp_path / "store")
        functions.publish(
            bundle_uri=(tmp_path / "missing" / "bundle.tar.gz").as_uri(),
            bundle_sha256="0" * 64,
            description="a bundle that is not there",
        )
        functions.create_alias("live", "1")
        response = httpx.post(f"{url}/predict", json=BAD_BODY)
        assert response.status_code == 503
        assert response.headers["x-function-version"] == "1"
        assert "function version 1 could not load its bundle" in response.json()["detail"]
        assert "Traceback" not in response.text
        assert httpx.get(f"{url}/health").status_code == 503


def test_serve_command_routes_through_the_gateway(
    deployment: Deployment, traffic_rows: list[Row], tmp_path: Path
) -> None:
    deployment.route({"2": 0.5})
    port, log_path = free_port(), tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*CLI, "serve", "--store", str(deployment.root), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url, process, log_path)
            served = {predict_at(url, row) for row in traffic_rows[:20]}
        finally:
            process.terminate()
            process.wait(timeout=10)
    assert served == {"1", "2"}
    banner = " ".join(log_path.read_text().split())  # rich wraps long lines
    assert "through the local gateway" in banner
    assert "version 1 (churn model version 1) 50%, version 2 (churn model version 2) 50%" in banner


def predict_at(url: str, row: Row) -> str:
    response = httpx.post(f"{url}/predict", json={"features": row}, timeout=30)
    assert response.status_code == 200
    return response.headers["x-function-version"]


def wait_until_up(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/openapi.json", timeout=1)
            return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"serve did not start: {log_path.read_text()}")
        time.sleep(0.2)


def test_request_log_is_thread_safe_and_partitioned_by_hour(tmp_path: Path) -> None:
    request_log = RequestLog(tmp_path, "predict")
    base = datetime(2026, 1, 1, 23, 30, tzinfo=UTC)

    def write(worker: int) -> None:
        for i in range(200):
            ts = base + timedelta(minutes=worker * 15 + i % 7)  # 23:30 .. 01:21 next day
            request_log.append(
                RequestRecord(ts, str(worker % 2 + 1), "m", "/predict", 200, 1.0, 1, [0.5] * 20)
            )

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    request_log.close()

    parts = sorted((tmp_path / "metrics" / "predict").glob("dt=*/hour=*/part-*.jsonl"))
    assert [p.parent.parent.name + "/" + p.parent.name for p in parts] == [
        "dt=2026-01-01/hour=23",
        "dt=2026-01-02/hour=00",
        "dt=2026-01-02/hour=01",
    ]
    lines = [line for part in parts for line in part.read_bytes().splitlines(keepends=True)]
    assert len(lines) == 1600
    assert all(line.endswith(b"\n") and len(json.loads(line)["scores"]) == 20 for line in lines)

    since = datetime(2026, 1, 2, 0, 5, tzinfo=UTC)
    records = list(read_records(tmp_path, "predict", since))
    assert records and all(r.ts >= since for r in records)
    everything = signals_since(tmp_path, "predict", base, ["1", "2"])
    assert everything["1"].requests + everything["2"].requests == 1600
    until = datetime(2026, 1, 2, 0, 30, tzinfo=UTC)
    window = signals_since(tmp_path, "predict", since, ["1", "2"], until=until)
    expected = sum(1 for r in records if r.ts <= until)
    assert window["1"].requests + window["2"].requests == expected > 0
