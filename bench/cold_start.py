"""Cold start: a fresh process imports a handler, loads the model and answers one event.

Three children answer the same API Gateway event for the same bundle (see
``bench/cold_start_children``): ours (``functions.predict.handler``), the naive baseline
(``bench.naive_service``) and a bare ONNX Runtime handler, the floor for any ONNX-served function.
Each child times itself with ``perf_counter`` from its first line and reports its peak RSS; the
parent adds the wall clock from spawning the interpreter to the answer (interpreter start-up
included, process teardown excluded). Rounds are interleaved so machine noise hits every side, one
untimed round first fills the OS page cache and the bytecode caches; medians are reported. A real
Lambda cold start also reads the code from a cold disk, which a benchmark on one machine cannot
reproduce.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.events import predict_event

REPO_ROOT = Path(__file__).resolve().parent.parent
CHILDREN = REPO_ROOT / "bench" / "cold_start_children"
KINDS = ("ours", "naive", "bare_onnx")


@dataclass(frozen=True)
class ColdStart:
    """One side's medians over the timed rounds."""

    spawn_to_answer_ms: float
    in_child_ms: float
    ready_ms: float
    first_event_ms: float
    process_exit_ms: float
    peak_rss_mb: float
    probability: float
    runs: int


def _run_child(
    kind: str, event_path: Path, result_path: Path, env: dict[str, str]
) -> dict[str, Any]:
    result_path.unlink(missing_ok=True)
    spawned_epoch = time.time()
    spawned = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(CHILDREN / f"{kind}.py"), str(event_path), str(result_path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,  # ours prints its EMF metrics and logs: real work, not for the screen
        text=True,
        timeout=300,
        check=False,
    )
    exited = time.perf_counter()
    if completed.returncode != 0 or not result_path.is_file():
        raise RuntimeError(f"cold-start child {kind} failed:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(result_path.read_text())
    if result["status"] != 200:
        raise RuntimeError(f"cold-start child {kind} answered {result['status']}")
    result["spawn_to_answer_ms"] = (result["answered_epoch"] - spawned_epoch) * 1000
    result["process_exit_ms"] = (exited - spawned) * 1000
    return result


def _median(runs: list[dict[str, Any]]) -> ColdStart:
    fields = [f for f in ColdStart.__dataclass_fields__ if f != "runs"]
    values = {name: statistics.median(float(run[name]) for run in runs) for name in fields}
    return ColdStart(**values, runs=len(runs))


def measure_cold_start(
    bundle_dir: Path, row: dict[str, object], work_dir: Path, *, rounds: int = 5
) -> dict[str, ColdStart]:
    """Medians per side (``ours``, ``naive``, ``bare_onnx``) over ``rounds`` interleaved rounds."""
    event_path = work_dir / "cold-start-event.json"
    event_path.write_text(json.dumps(predict_event(row)))
    env = {
        **os.environ,
        "MODEL_URI": str(bundle_dir),
        "POWERTOOLS_METRICS_NAMESPACE": os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "bench"),
    }
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for round_number in range(rounds + 1):
        for kind in KINDS:
            result = _run_child(kind, event_path, work_dir / f"cold-{kind}.json", env)
            if round_number > 0:  # round 0 warms the page and bytecode caches
                runs[kind].append(result)
    return {kind: _median(kind_runs) for kind, kind_runs in runs.items()}


def as_json(results: dict[str, ColdStart]) -> dict[str, dict[str, float]]:
    return {kind: asdict(result) for kind, result in results.items()}
