"""Every task through the full Lambda handler, against the binary model measured in the same run.

``python -m bench.task_latency`` (also step 6 of ``make bench``)

One table, three targets (``lambdaserve.datasets.churn``, 5000 dirty rows, seed 7): the binary
``churned``, the multiclass ``contract`` (three contract types) and the regression
``monthly_charges``. Each model takes every other column but the customer id as features, the
regression also without ``total_charges`` (monthly charges times tenure: a leak), so the three
take 14, 14 and 13 columns. Each is the same random forest (100 trees, depth 10) trained through
our training job with its task named explicitly, so each bundle carries its own parity-checked
ONNX model. Requests are rows of one fresh table (2000 rows, seed 11), the same customers for
every task.

Per task, through ``build_lambda_handler`` (Mangum, FastAPI, Powertools, ONNX Runtime, capture
on, as shipped) with API Gateway REST events as ``bench.warm_latency`` sends them: the warm
single-prediction p50 (1000 calls round-robin over 50 rows, after 50 warm-up calls) and the
1000-row batch p50 (100 calls, after 3). Calls are interleaved: one call of each task in turn, the
order rotating, so a slow spell of a shared machine lands on every task alike, not on one.

Targets: each non-binary task's single p50 and batch p50 at most 1.2x the binary model's, and
ONNX Runtime against scikit-learn on the 2000 fresh rows within 1e-5 (``bench.onnx_parity``: the
probabilities serving answers, or the regression's prediction relative to the target's standard
deviation). A MISS is reported, never raised, as everywhere in ``make bench``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench import onnx_parity, report
from bench.events import batch_event, predict_event
from bench.model_fixture import TRAIN_ROWS, schema_rows, train_bundle
from bench.report import Check, absolute, at_most, table
from bench.warm_latency import Handler, Latency, ours_handler, time_calls
from lambdaserve.datasets import churn
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.encoding import rows_to_columns
from lambdaserve.kernel.manifest import Task, class_key
from lambdaserve.kernel.predictors import load_predictor
from lambdaserve.training.hyperparameters import TaskChoice

FRESH_ROWS = 2000
BATCH_ROWS = 1000
SINGLE_EVENTS = 50
SINGLE_CALLS = 1000
BATCH_CALLS = 100
#: Each non-binary task's latency, as a multiple of the binary model's, at most this.
LATENCY_RATIO_LIMIT = 1.2
#: ONNX against scikit-learn: |diff| of a probability, or |diff| / std of a regression.
PARITY_LIMIT = 1e-5


@dataclass(frozen=True)
class TaskCase:
    name: str
    task: Task
    choice: TaskChoice
    target: str
    drop: tuple[str, ...]


CASES = (
    TaskCase("binary", "binary_classification", "binary", churn.TARGET, (churn.ID_COLUMN,)),
    TaskCase(
        "multiclass", "multiclass_classification", "multiclass", "contract", (churn.ID_COLUMN,)
    ),
    TaskCase(
        "regression",
        "regression",
        "regression",
        "monthly_charges",
        (churn.ID_COLUMN, "total_charges"),
    ),
)


@dataclass(frozen=True)
class TaskResult:
    task: Task
    target: str
    features: int
    runtime: str
    train_seconds: float
    single: Latency
    batch: Latency
    parity: onnx_parity.Parity
    #: The handler's batch answers against the ONNX predictor on the same rows (a sanity check
    #: that the handler served this bundle, in its task's shape).
    served_vs_onnx_max_diff: float


@dataclass(frozen=True)
class TaskLatency:
    batch_rows: int
    results: dict[str, TaskResult]

    @property
    def binary(self) -> TaskResult:
        return self.results["binary"]


def _served_outputs(bundle: VerifiedBundle, response: dict[str, Any]) -> npt.NDArray[np.float64]:
    manifest = bundle.manifest
    answers = json.loads(response["body"])["predictions"]
    if manifest.task == "binary_classification":
        return np.array([a["probability"] for a in answers], dtype=np.float64)
    if manifest.task == "multiclass_classification":
        keys = [class_key(c) for c in manifest.classes]
        return np.array([[a["probabilities"][k] for k in keys] for a in answers], dtype=np.float64)
    return np.array([a["prediction"] for a in answers], dtype=np.float64)


def _onnx_outputs(
    bundle: VerifiedBundle, rows: Sequence[dict[str, object]]
) -> npt.NDArray[np.float64]:
    predictor = load_predictor(bundle, "onnx")
    columns = rows_to_columns(bundle.manifest.features, rows)
    if bundle.manifest.task == "binary_classification":
        return predictor.predict_proba(columns)
    return predictor.predict_outputs(columns)


def _interleaved(
    handlers: dict[str, Handler],
    events: dict[str, list[dict[str, Any]]],
    *,
    calls: int,
    warmup: int,
) -> tuple[dict[str, list[float]], dict[str, dict[str, Any]]]:
    """``calls`` timed calls of every handler, one call of each in turn (the order rotating), so
    contention from the rest of the machine falls on every task alike; ``warmup`` calls each
    first. Milliseconds per call, and each handler's last response."""
    names = list(handlers)
    for name in names:
        time_calls(handlers[name], events[name], iterations=0, warmup=warmup)
    samples: dict[str, list[float]] = {name: [] for name in names}
    responses: dict[str, dict[str, Any]] = {}
    for call in range(calls):
        shift = call % len(names)
        for name in names[shift:] + names[:shift]:
            event = events[name][call % len(events[name])]
            timed, (responses[name],) = time_calls(handlers[name], [event], iterations=1, warmup=0)
            samples[name] += timed
    return samples, responses


def _train_all(
    root: Path, progress: Callable[[str], None]
) -> tuple[dict[str, VerifiedBundle], dict[str, float]]:
    """One bundle per task, each with a parity-checked ONNX model, and its training seconds."""
    frame = churn.generate_churn(TRAIN_ROWS, seed=7)
    bundles: dict[str, VerifiedBundle] = {}
    seconds: dict[str, float] = {}
    for case in CASES:
        progress(f"training the {case.name} forest ({case.target}) through the training job")
        started = time.perf_counter()
        bundles[case.name] = train_bundle(
            root / f"task-{case.name}",
            frame,
            "random_forest",
            target=case.target,
            task=case.choice,
            drop=case.drop,
            model_name=f"bench-{case.name}",
        )
        seconds[case.name] = time.perf_counter() - started
        onnx = bundles[case.name].manifest.onnx
        if onnx.status != "ok":
            raise RuntimeError(f"the {case.name} bundle has no ONNX model ({onnx})")
    return bundles, seconds


def measure(root: Path, progress: Callable[[str], None] = print) -> TaskLatency:
    """Train one bundle per task under ``root``, then time and check each through the handler."""
    bundles, seconds = _train_all(root, progress)
    fresh = churn.generate_churn(FRESH_ROWS, seed=11)
    rows = {name: schema_rows(fresh, b.manifest.features) for name, b in bundles.items()}
    progress(f"ONNX vs scikit-learn parity on {FRESH_ROWS} fresh rows, every task")
    parity = {name: onnx_parity.measure_parity(b, rows[name]) for name, b in bundles.items()}
    handlers = {name: ours_handler(b.path) for name, b in bundles.items()}
    progress(f"warm single predictions through the handler: {SINGLE_CALLS} calls per task")
    single, _ = _interleaved(
        handlers,
        {
            name: [predict_event(r) for r in task_rows[:SINGLE_EVENTS]]
            for name, task_rows in rows.items()
        },
        calls=SINGLE_CALLS,
        warmup=50,
    )
    progress(f"warm {BATCH_ROWS}-row batches through the handler: {BATCH_CALLS} calls per task")
    batch, answers = _interleaved(
        handlers,
        {name: [batch_event(task_rows[:BATCH_ROWS])] for name, task_rows in rows.items()},
        calls=BATCH_CALLS,
        warmup=3,
    )
    results = {}
    for case in CASES:
        bundle = bundles[case.name]
        served = _served_outputs(bundle, answers[case.name])
        expected = _onnx_outputs(bundle, rows[case.name][:BATCH_ROWS])
        results[case.name] = TaskResult(
            task=case.task,
            target=case.target,
            features=len(bundle.manifest.features.features),
            runtime=bundle.manifest.preferred_runtime,
            train_seconds=round(seconds[case.name], 1),
            single=Latency.of(single[case.name]),
            batch=Latency.of(batch[case.name]),
            parity=parity[case.name],
            served_vs_onnx_max_diff=float(np.max(np.abs(served - expected))),
        )
    return TaskLatency(BATCH_ROWS, results)


def checks(result: TaskLatency) -> list[Check]:
    binary = result.binary
    rows = result.batch_rows
    latency = [
        check
        for name, r in result.results.items()
        if name != "binary"
        for check in (
            at_most(
                f"{name} warm single p50 vs binary",
                r.single.p50_ms,
                binary.single.p50_ms,
                LATENCY_RATIO_LIMIT,
                "ms",
            ),
            at_most(
                f"{name} batch {rows} vs binary",
                r.batch.p50_ms,
                binary.batch.p50_ms,
                LATENCY_RATIO_LIMIT,
                "ms",
            ),
        )
    ]
    parity = [
        absolute(
            f"ONNX vs sklearn {r.parity.measure} ({name})", r.parity.max_relative_diff, PARITY_LIMIT
        )
        for name, r in result.results.items()
    ]
    return latency + parity


def details(result: TaskLatency) -> str:
    binary = result.binary
    rows = [
        (
            name,
            r.target,
            str(r.features),
            r.runtime,
            f"{r.single.p50_ms:.3f}",
            f"{r.single.p99_ms:.3f}",
            f"{r.single.p50_ms / binary.single.p50_ms:.3f}x",
            f"{r.batch.p50_ms:.1f}",
            f"{r.batch.p50_ms / binary.batch.p50_ms:.3f}x",
            r.parity.measure,
            f"{r.parity.max_relative_diff:.2e}",
            "-" if r.parity.label_flips is None else str(r.parity.label_flips),
            f"{r.served_vs_onnx_max_diff:.1e}",
        )
        for name, r in result.results.items()
    ]
    single_calls = next(iter(result.results.values())).single.iterations
    batch_calls = next(iter(result.results.values())).batch.iterations
    return (
        f"Every task through the Lambda handler (ms; single: {single_calls} calls, batch "
        f"{result.batch_rows}: {batch_calls} calls, interleaved across tasks; parity on "
        f"{binary.parity.rows} fresh rows)\n"
        + table(
            (
                "task",
                "target",
                "features",
                "runtime",
                "single p50",
                "single p99",
                "vs binary",
                f"batch {result.batch_rows} p50",
                "vs binary",
                "parity measure",
                "ONNX vs sklearn",
                "label flips",
                "served vs ONNX",
            ),
            rows,
        )
    )


def as_json(result: TaskLatency) -> dict[str, Any]:
    return {
        "batch_rows": result.batch_rows,
        "results": {
            name: {**asdict(r), "parity": onnx_parity.as_json(r.parity)}
            for name, r in result.results.items()
        },
    }


def main() -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lambdaserve-bench-tasks-") as tmp:
        result = measure(Path(tmp), lambda message: print(f"[bench] {message}", flush=True))
    found = checks(result)
    print()
    print(details(result))
    print()
    print(report.checks_table(found))
    path = report.write_results(
        {
            "bench_seconds": round(time.perf_counter() - started, 1),
            "tasks": as_json(result),
            "checks": report.checks_json(found),
        },
        name="task_latency.json",
    )
    print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
