"""End to end through the installed ``lambdaserve`` command: train → serve on loopback → predict."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from lambdaserve.cli.main import app
from lambdaserve.datasets import churn
from lambdaserve.serving.background_server import free_port

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "lambdaserve.cli"]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    root = tmp_path_factory.mktemp("e2e")
    data = churn.write_churn_csv(root / "churn.csv", 2000, seed=11)
    result = run_cli(
        "train",
        "--data",
        str(data),
        "--target",
        churn.TARGET,
        "--drop",
        churn.ID_COLUMN,
        "--name",
        "churn",
        "--store",
        str(root / "store"),
        "--json",
        "--hp",
        "cv_folds=2",
    )
    assert result.returncode == 0, result.stderr
    return root, json.loads(result.stdout)


def test_train_json_output(trained: tuple[Path, dict[str, object]]) -> None:
    root, summary = trained
    assert summary["name"] == "churn" and summary["version"] == "1"
    assert summary["runtime"] == "onnx"
    assert str(summary["bundle_uri"]).startswith("file://")
    assert (root / "store" / "models" / "churn" / "1" / "bundle.tar.gz").is_file()
    assert {"roc_auc", "f1", "brier"} <= set(summary["metrics"])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server(trained: tuple[Path, dict[str, object]]) -> Iterator[str]:
    root, _ = trained
    port = free_port()
    log = (root / "serve.log").open("w")
    process = subprocess.Popen(
        [*CLI, "serve", "--store", str(root / "store"), "--model", "churn:1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.close()
            raise AssertionError(f"serve did not start: {(root / 'serve.log').read_text()}")
        time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=10)
    log.close()


def test_predict_over_http(server: str, trained: tuple[Path, dict[str, object]]) -> None:
    model = httpx.get(f"{server}/model").json()
    row = {}
    for feature in model["features"]:
        if feature["kind"] == "numeric":
            row[feature["name"]] = feature["minimum"]
        else:
            row[feature["name"]] = feature["categories"][-1]
    response = httpx.post(f"{server}/predict", json={"features": row})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {"name": "churn", "version": "1"}
    assert 0 <= body["probability"] <= 1
    batch = httpx.post(f"{server}/predict/batch", json={"instances": [row] * 20})
    assert len(batch.json()["predictions"]) == 20
    assert httpx.post(f"{server}/predict", json={"features": {}}).status_code == 422


def test_predict_command_scores_a_csv(server: str, tmp_path: Path) -> None:
    data = churn.write_churn_csv(tmp_path / "traffic.csv", 300, seed=12)
    output = tmp_path / "predictions.jsonl"
    result = run_cli(
        "predict",
        "--data",
        str(data),
        "--url",
        server,
        "--batch-size",
        "128",
        "--output",
        str(output),
    )
    assert result.returncode == 0, result.stderr
    lines = output.read_text().splitlines()
    assert len(lines) == 300
    assert len({json.loads(line)["prediction_id"] for line in lines}) == 300


def test_serve_refuses_a_tampered_store(
    trained: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    root, _ = trained
    store = tmp_path / "store"
    shutil.copytree(root / "store", store, ignore=shutil.ignore_patterns(".cache"))
    manifest = store / "models" / "churn" / "1" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"churn"', '"churn" ', 1))
    result = run_cli("serve", "--store", str(store), "--port", str(free_port()), timeout=60)
    assert result.returncode == 1
    assert "digest mismatch" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_failure_is_a_clear_message(tmp_path: Path) -> None:
    data = churn.write_churn_csv(tmp_path / "churn.csv", 200, seed=1)
    result = run_cli(
        "train", "--data", str(data), "--target", "nope", "--store", str(tmp_path / "store")
    )
    assert result.returncode == 1
    assert "target column 'nope' not found" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "store" / "models").exists()


def _command_paths(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf command of the CLI, as the words a user types ("rollout", "start").

    Typer vendors its own click, so a group is told by its ``commands``, not by class.
    """
    paths: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            paths += _command_paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


def test_the_installed_command_lists_its_commands() -> None:
    result = run_cli("--help", timeout=60)
    assert result.returncode == 0, result.stderr
    for name in ("train", "serve", "predict", "demo", "synth", "import", "rollout", "drift"):
        assert name in result.stdout


def test_every_command_has_help() -> None:
    """In process: one interpreter start for the whole CLI (a subprocess each cost ~8 s)."""
    paths = _command_paths(typer.main.get_command(app))
    assert len(paths) >= 15, paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], catch_exceptions=False)
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.stdout, path
        assert " ".join(path) in " ".join(result.stdout.split()), path


def test_demo_runs_the_lifecycle(tmp_path: Path) -> None:
    result = run_cli(
        "demo", "--store", str(tmp_path / "store"), "--rows", "1500", "--traffic-rows", "500"
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "request expectations failed" in result.stdout
    assert "demo finished: every request answered as expected" in result.stdout
    assert "v2 promoted, v3 rolled back" in result.stdout
    assert "A/B report: churn (baseline v1)" in result.stdout
    assert "v2 vs v1 on ground truth" in result.stdout
    assert "service model" in result.stdout and "charges model" in result.stdout
