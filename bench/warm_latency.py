"""Warm latency through the Lambda handler: single predictions and a 1000-row batch.

Ours is the real handler (``build_lambda_handler``: Mangum, FastAPI, Powertools logger and EMF
metrics, ONNX Runtime); the baselines are ``bench.naive_service`` handlers for the same bundle.
Every call gets a full API Gateway event and a fake context, in one process, after a warm-up.
Handlers are built, and timed, with stdout sent to ``os.devnull``: the EMF flush (a JSON print per
invocation) is part of the real cost and stays in, it just does not reach the terminal.

The per-row loop over 1000 rows is timed once; when a 50-row probe predicts more than
``LOOP_BUDGET_SECONDS`` it runs on fewer rows and is scaled linearly (the output says so). Each
naive case is also measured with the forest's ``n_jobs=1``, for information.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.events import FakeLambdaContext, batch_event, predict_event
from bench.naive_service import BatchMode, build_naive_handler
from lambdaserve.serving.settings import ServingSettings
from lambdaserve.wiring.aws_predict import build_lambda_handler

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
#: Above this estimated duration the per-row loop is measured on fewer rows and scaled linearly.
LOOP_BUDGET_SECONDS = 30.0
_DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the handlers that log to it


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    iterations: int

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Latency:
        values = np.asarray(samples_ms)
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return cls(float(p50), float(p90), float(p99), float(values.mean()), len(values))


def ours_handler(bundle_dir: Path, *, capture: bool = True) -> Handler:
    """Our Lambda handler; ``capture`` on is the product as shipped (one capture line per row)."""
    with contextlib.redirect_stdout(_DEVNULL):  # Powertools' logger binds sys.stdout when built
        return build_lambda_handler(
            ServingSettings(model_uri=str(bundle_dir), capture_enabled=capture)
        )


def naive_handler(bundle_dir: Path, batch_mode: BatchMode, n_jobs: int | None = None) -> Handler:
    return build_naive_handler(bundle_dir, batch_mode, n_jobs=n_jobs)


def time_calls(
    handler: Handler, events: Sequence[dict[str, Any]], *, iterations: int, warmup: int
) -> tuple[list[float], list[dict[str, Any]]]:
    """Milliseconds per call (events taken round-robin) and the last response for each event."""
    context = FakeLambdaContext()
    samples: list[float] = []
    responses: list[dict[str, Any]] = [{} for _ in events]
    with contextlib.redirect_stdout(_DEVNULL):
        for index in range(warmup):
            handler(events[index % len(events)], context)
        for index in range(iterations):
            event = events[index % len(events)]
            started = time.perf_counter()
            response = handler(event, context)
            samples.append((time.perf_counter() - started) * 1000)
            responses[index % len(events)] = response
    for response in responses:
        if response and response["statusCode"] != 200:
            raise RuntimeError(f"handler answered {response['statusCode']}: {response['body']}")
    return samples, responses


def _probabilities(response: dict[str, Any]) -> list[float]:
    body = json.loads(response["body"])
    if "predictions" in body:
        return [float(p["probability"]) for p in body["predictions"]]
    return [float(body["probability"])]


def max_difference(ours: Sequence[dict[str, Any]], naive: Sequence[dict[str, Any]]) -> float:
    """Largest |ours - naive| probability over matching responses (a sanity check of both)."""
    a = np.concatenate([_probabilities(r) for r in ours])
    b = np.concatenate([_probabilities(r) for r in naive])
    return float(np.max(np.abs(a - b)))


@dataclass(frozen=True)
class SingleResult:
    ours: Latency
    naive: Latency
    naive_one_job: Latency  # information: the naive baseline with the forest's n_jobs=1
    max_probability_diff: float


def measure_single(
    bundle_dir: Path,
    rows: Sequence[dict[str, object]],
    *,
    ours_iterations: int = 1000,
    naive_iterations: int = 300,
) -> SingleResult:
    events = [predict_event(row) for row in rows[:50]]
    ours, ours_responses = time_calls(
        ours_handler(bundle_dir), events, iterations=ours_iterations, warmup=50
    )
    naive, naive_responses = time_calls(
        naive_handler(bundle_dir, "vectorized"), events, iterations=naive_iterations, warmup=20
    )
    one_job, _ = time_calls(
        naive_handler(bundle_dir, "vectorized", n_jobs=1),
        events,
        iterations=naive_iterations,
        warmup=20,
    )
    return SingleResult(
        Latency.of(ours),
        Latency.of(naive),
        Latency.of(one_job),
        max_difference(ours_responses, naive_responses),
    )


@dataclass(frozen=True)
class LoopResult:
    """The per-row loop over a whole batch (measured on ``measured_rows``, scaled linearly)."""

    total_ms: float
    measured_rows: int


@dataclass(frozen=True)
class BatchResult:
    rows: int
    ours: Latency
    naive_vectorized: Latency
    naive_loop: LoopResult
    naive_vectorized_one_job: Latency  # information: n_jobs=1
    naive_loop_one_job: LoopResult  # information: n_jobs=1
    ours_no_capture: Latency  # information: prediction capture switched off
    max_probability_diff: float


def _naive_loop(
    bundle_dir: Path, rows: Sequence[dict[str, object]], n_jobs: int | None = None
) -> LoopResult:
    """Time the per-row loop over all ``rows``, or over a part of them when it would be slow."""
    handler = naive_handler(bundle_dir, "loop", n_jobs)
    probe_rows = min(50, len(rows))
    probe, _ = time_calls(handler, [batch_event(rows[:probe_rows])], iterations=1, warmup=1)
    estimate_seconds = probe[0] / probe_rows * len(rows) / 1000
    measured = len(rows)
    if estimate_seconds > LOOP_BUDGET_SECONDS:
        measured = max(probe_rows, int(len(rows) * LOOP_BUDGET_SECONDS / estimate_seconds / 2))
    samples, _ = time_calls(handler, [batch_event(rows[:measured])], iterations=1, warmup=0)
    return LoopResult(samples[0] * len(rows) / measured, measured)


def measure_batch(
    bundle_dir: Path, rows: Sequence[dict[str, object]], *, iterations: int = 20
) -> BatchResult:
    events = [batch_event(rows)]
    ours, ours_responses = time_calls(
        ours_handler(bundle_dir), events, iterations=iterations, warmup=3
    )
    no_capture, _ = time_calls(
        ours_handler(bundle_dir, capture=False), events, iterations=iterations, warmup=3
    )
    vectorized, naive_responses = time_calls(
        naive_handler(bundle_dir, "vectorized"), events, iterations=iterations, warmup=3
    )
    vectorized_one_job, _ = time_calls(
        naive_handler(bundle_dir, "vectorized", n_jobs=1), events, iterations=iterations, warmup=3
    )
    return BatchResult(
        rows=len(rows),
        ours=Latency.of(ours),
        naive_vectorized=Latency.of(vectorized),
        naive_loop=_naive_loop(bundle_dir, rows),
        naive_vectorized_one_job=Latency.of(vectorized_one_job),
        naive_loop_one_job=_naive_loop(bundle_dir, rows, n_jobs=1),
        ours_no_capture=Latency.of(no_capture),
        max_probability_diff=max_difference(ours_responses, naive_responses),
    )


def as_json(result: SingleResult | BatchResult) -> dict[str, Any]:
    return asdict(result)
