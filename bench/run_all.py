"""``make bench``: every benchmark, each next to a baseline measured in the same run.

1. Train a random forest (100 trees, depth 10) and a logistic regression on a synthetic 5000-row
   dataset (20 numeric + 3 categorical columns, ~3% missing) through our training job.
2. ONNX vs scikit-learn parity on 2000 fresh rows, both bundles.
3. Cold start (fresh processes): ours vs the naive baseline vs a bare ONNX Runtime handler.
4. Warm single-row latency through the handler: ours vs naive.
5. Warm 1000-row batch through the handler: ours vs naive per-row loop and naive vectorized.
6. Every task (``bench.task_latency``): a binary, a multiclass and a regression forest on one
   churn table, warm single p50 and 1000-row batch through the handler against the binary one,
   and ONNX vs scikit-learn parity per task.
7. A user's own pipeline (``bench.user_model_latency``): saved with ``save_model``, served by
   scikit-learn from a DataFrame through the handler, against the user's own ``predict_proba``.
8. Under AWS's Lambda emulator (``bench.emulated_cold_start``): the built predict function
   against a bare ONNX Runtime handler on the same layers: init + first invocation of a fresh
   environment, warm single p50 and 1000-row batch p50, peak RSS.

The baselines are described in ``bench.naive_service`` and ``bench.cold_start``. Results are
printed and written to ``bench/results/latest.json``.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import (
    cold_start,
    emulated_cold_start,
    onnx_parity,
    report,
    task_latency,
    user_model_latency,
    warm_latency,
)
from bench.model_fixture import BenchModels, build_models, feature_rows
from bench.report import Check, absolute, at_most, speedup, table

BATCH_ROWS = 1000


def _progress(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def _checks(
    cold: dict[str, cold_start.ColdStart],
    single: warm_latency.SingleResult,
    batch: warm_latency.BatchResult,
    parity: dict[str, onnx_parity.Parity],
) -> list[Check]:
    ours, naive, bare = cold["ours"], cold["naive"], cold["bare_onnx"]
    rows = batch.rows
    return [
        at_most(
            "cold start vs naive", ours.spawn_to_answer_ms, naive.spawn_to_answer_ms, 0.2, "ms"
        ),
        at_most(
            "cold start vs bare ONNX handler",
            ours.spawn_to_answer_ms,
            bare.spawn_to_answer_ms,
            1.5,
            "ms",
        ),
        at_most("cold start peak RSS vs naive", ours.peak_rss_mb, naive.peak_rss_mb, 0.5, "MB"),
        at_most("warm single p50 vs naive", single.ours.p50_ms, single.naive.p50_ms, 1 / 50, "ms"),
        speedup(
            f"batch {rows} vs naive per-row loop",
            batch.ours.p50_ms,
            batch.naive_loop.total_ms,
            1000,
            "ms",
        ),
        speedup(
            f"batch {rows} vs naive vectorized",
            batch.ours.p50_ms,
            batch.naive_vectorized.p50_ms,
            2,
            "ms",
        ),
        *(
            absolute(f"ONNX vs sklearn max |diff| ({name})", result.max_abs_diff, 1e-5)
            for name, result in parity.items()
        ),
        at_most(
            "info: warm single p50 vs naive n_jobs=1",
            single.ours.p50_ms,
            single.naive_one_job.p50_ms,
            1 / 50,
            "ms",
            info=True,
        ),
        speedup(
            f"info: batch {rows} vs naive loop n_jobs=1",
            batch.ours.p50_ms,
            batch.naive_loop_one_job.total_ms,
            1000,
            "ms",
            info=True,
        ),
        speedup(
            f"info: batch {rows} capture off vs naive loop",
            batch.ours_no_capture.p50_ms,
            batch.naive_loop.total_ms,
            1000,
            "ms",
            info=True,
        ),
        speedup(
            f"info: batch {rows} capture off vs naive vectorized",
            batch.ours_no_capture.p50_ms,
            batch.naive_vectorized.p50_ms,
            2,
            "ms",
            info=True,
        ),
        speedup(
            f"info: batch {rows} vs naive vectorized n_jobs=1",
            batch.ours.p50_ms,
            batch.naive_vectorized_one_job.p50_ms,
            2,
            "ms",
            info=True,
        ),
    ]


def _details(
    cold: dict[str, cold_start.ColdStart],
    single: warm_latency.SingleResult,
    batch: warm_latency.BatchResult,
    parity: dict[str, onnx_parity.Parity],
) -> str:
    cold_rows = [
        (
            side,
            f"{r.spawn_to_answer_ms:.0f}",
            f"{r.in_child_ms:.0f}",
            f"{r.ready_ms:.0f}",
            f"{r.first_event_ms:.1f}",
            f"{r.process_exit_ms:.0f}",
            f"{r.peak_rss_mb:.0f}",
        )
        for side, r in cold.items()
    ]
    runs = next(iter(cold.values())).runs
    latency_rows = [
        (name, f"{lat.p50_ms:.3f}", f"{lat.p90_ms:.3f}", f"{lat.p99_ms:.3f}", str(lat.iterations))
        for name, lat in (
            ("single: ours", single.ours),
            ("single: naive", single.naive),
            ("single: naive n_jobs=1", single.naive_one_job),
            (f"batch {batch.rows}: ours", batch.ours),
            (f"batch {batch.rows}: ours, capture off", batch.ours_no_capture),
            (f"batch {batch.rows}: naive vectorized", batch.naive_vectorized),
            (f"batch {batch.rows}: naive vectorized n_jobs=1", batch.naive_vectorized_one_job),
        )
    ]
    for label, loop in (("", batch.naive_loop), (" n_jobs=1", batch.naive_loop_one_job)):
        scaled = ", scaled linearly" if loop.measured_rows != batch.rows else ""
        latency_rows.append(
            (
                f"batch {batch.rows}: naive per-row loop{label}",
                f"{loop.total_ms:.0f}",
                "-",
                "-",
                f"1 (over {loop.measured_rows} rows{scaled})",
            )
        )
    parity_rows = [
        (
            name,
            str(p.rows),
            f"{p.max_abs_diff:.2e}",
            f"{p.mean_abs_diff:.2e}",
            "-" if p.label_flips is None else str(p.label_flips),
            f"{p.build_time_max_abs_diff:.2e}" if p.build_time_max_abs_diff is not None else "-",
        )
        for name, p in parity.items()
    ]
    return "\n\n".join(
        [
            f"Cold start (median of {runs} interleaved runs; ms unless noted)\n"
            + table(
                (
                    "side",
                    "spawn->answer",
                    "first line->answer",
                    "import+load",
                    "first event",
                    "spawn->exit",
                    "peak RSS MB",
                ),
                cold_rows,
            ),
            "Warm latency through the Lambda handler (ms)\n"
            + table(("case", "p50", "p90", "p99", "iterations"), latency_rows),
            "ONNX Runtime vs scikit-learn on fresh rows\n"
            + table(
                ("model", "rows", "max |diff|", "mean |diff|", "label flips", "build-time max"),
                parity_rows,
            ),
            f"ours vs naive max |probability diff|: single {single.max_probability_diff:.2e}, "
            f"batch {batch.max_probability_diff:.2e}, cold start (all three sides) "
            f"{_cold_spread(cold):.2e}",
        ]
    )


def _emulated_checks(emulated: dict[str, emulated_cold_start.Emulated] | None) -> list[Check]:
    """Issue 16's targets, on the emulator's figures (init + first invocation is the cold
    start a caller waits for)."""
    if emulated is None:
        return []
    ours, bare = emulated["ours"], emulated["bare_onnx"]
    return [
        at_most(
            "emulated cold start vs bare ONNX",
            ours.init_ms + ours.first_invoke_ms,
            bare.init_ms + bare.first_invoke_ms,
            1.5,
            "ms",
        ),
        at_most("emulated warm p50 vs bare ONNX", ours.warm_p50_ms, bare.warm_p50_ms, 4, "ms"),
        at_most(
            f"emulated batch {BATCH_ROWS} vs bare ONNX",
            ours.batch_p50_ms,
            bare.batch_p50_ms,
            1.4,
            "ms",
        ),
        at_most(
            "info: emulated peak RSS vs bare ONNX",
            ours.peak_rss_mb,
            bare.peak_rss_mb,
            2,
            "MB",
            info=True,
        ),
    ]


def _cold_spread(cold: dict[str, cold_start.ColdStart]) -> float:
    probabilities = [result.probability for result in cold.values()]
    return max(probabilities) - min(probabilities)


def _meta(models: BenchModels, seconds: float) -> dict[str, Any]:
    packages = ("onnxruntime", "scikit-learn", "pandas", "fastapi", "mangum", "numpy")
    return {
        "finished_at": datetime.now(UTC).isoformat(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": {name: version(name) for name in packages},
        "bench_seconds": round(seconds, 1),
        "train_seconds": models.train_seconds,
        "bundle_bytes": {name: entry.size for name, entry in models.forest.manifest.files.items()},
    }


def main() -> int:
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "bench")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lambdaserve-bench-") as tmp:
        work = Path(tmp)
        _progress("training the random forest and logistic regression bundles (training job)")
        models = build_models(work)
        for bundle in (models.forest, models.logistic):
            if bundle.manifest.onnx.status != "ok":
                print(f"{bundle.manifest.name}: no ONNX model ({bundle.manifest.onnx})")
                return 1
        rows = feature_rows(models.holdout)
        _progress(f"ONNX vs scikit-learn parity on {len(rows)} fresh rows")
        parity = {
            "random_forest": onnx_parity.measure_parity(models.forest, rows),
            "logistic_regression": onnx_parity.measure_parity(models.logistic, rows),
        }
        _progress("cold start: 1 warm-up + 5 timed rounds of 3 fresh processes")
        cold = cold_start.measure_cold_start(models.forest.path, rows[0], work)
        _progress("warm single-row latency through the handler")
        single = warm_latency.measure_single(models.forest.path, rows)
        _progress(f"warm {BATCH_ROWS}-row batch through the handler (the naive loop is slow)")
        batch = warm_latency.measure_batch(models.forest.path, rows[:BATCH_ROWS])
        tasks = task_latency.measure(work, _progress)
        _progress("under the Lambda emulator: 1 warm-up + 5 fresh environments per side")
        emulated = emulated_cold_start.measure(
            models.forest.path, rows, work / "emulated", progress=_progress
        )
    _progress("a user's save_model pipeline through the handler vs their own call")
    checks = _checks(cold, single, batch, parity) + task_latency.checks(tasks)
    checks += user_model_latency.run()
    checks += _emulated_checks(emulated)
    print()
    print(_details(cold, single, batch, parity))
    print()
    print(task_latency.details(tasks))
    print()
    print(report.checks_table(checks))
    path = report.write_results(
        {
            "meta": _meta(models, time.perf_counter() - started),
            "cold_start": cold_start.as_json(cold),
            "warm_single": warm_latency.as_json(single),
            "batch": warm_latency.as_json(batch),
            "parity": {name: onnx_parity.as_json(p) for name, p in parity.items()},
            "tasks": task_latency.as_json(tasks),
            "emulated": emulated_cold_start.as_json(emulated) if emulated else None,
            "checks": report.checks_json(checks),
        }
    )
    print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
