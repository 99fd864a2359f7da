"""Cold start, warm and batch latency under AWS's Lambda emulator: our predict function against
a bare ONNX Runtime handler, in the same run.

Both run as Lambda runs them (``tests/support/lambda_runtime.py``): the built task root (ours:
the predict asset; bare: ``bench/lambda_bare/bare_onnx_handler.py`` alone), the built layers for
this machine (serving-base + onnx for both), awslambdaric under the Runtime
Interface Emulator. Figures are the emulator's: the init phase (``INIT REPORT``) of a fresh
execution environment and each invocation's duration (``INVOKE RTDONE``); peak RSS is the
runtime process's VmHWM. Ours runs with everything a deployed function has on the request path:
Powertools metrics and logs, and capture (printed capture lines). Rounds are interleaved; one
untimed round first warms the page cache. A real cold start also reads the code from a cold disk
and starts a microVM, which a benchmark on one machine cannot reproduce.
"""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.events import batch_event, predict_event
from layers.build_layer import build_layer
from layers.function_asset import build_function_asset
from tests.support.lambda_runtime import (
    EmulatedFunction,
    build_managed_runtime,
    emulator_binary,
    machine_arch,
)

BARE_HANDLER = Path(__file__).resolve().parent / "lambda_bare" / "bare_onnx_handler.py"
SIDES = ("ours", "bare_onnx")


@dataclass(frozen=True)
class Emulated:
    """One side's medians: init and first invocation over fresh environments, warm p50s."""

    init_ms: float
    first_invoke_ms: float
    warm_p50_ms: float
    batch_p50_ms: float
    peak_rss_mb: float
    rounds: int


def _build(work: Path, bundle_dir: Path) -> dict[str, EmulatedFunction]:
    """Each side's function, not yet started (a fresh environment per ``dataclasses.replace``)."""
    arch = machine_arch()
    layers = {name: work / f"layer-{name}" for name in ("serving-base", "onnx")}
    for name, root in layers.items():
        build_layer(name, arch=arch, output_dir=root)
    # the same layers for both (numpy is serving-base's): the floor imports only numpy and ORT
    roots = (layers["serving-base"], layers["onnx"])
    runtime = build_managed_runtime(work / "runtime")
    ours_task, bare_task = work / "task-ours", work / "task-bare"
    build_function_asset(ours_task)
    bare_task.mkdir()
    shutil.copy2(BARE_HANDLER, bare_task / BARE_HANDLER.name)
    ours = {
        "MODEL_URI": str(bundle_dir),
        "BUNDLE_CACHE_DIR": str(work / "tmp-bundles"),
        "CAPTURE_ENABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "lambdaserve-predict",
        "POWERTOOLS_METRICS_NAMESPACE": "bench",
    }
    return {
        side: EmulatedFunction(
            task_root=task,
            layer_roots=roots,
            runtime_root=runtime,
            handler=handler,
            environment=environment,
            log_path=work / f"emulator-{side}.log",
        )
        for side, task, handler, environment in (
            ("ours", ours_task, "functions.predict.handler.lambda_handler", ours),
            (
                "bare_onnx",
                bare_task,
                "bare_onnx_handler.lambda_handler",
                {"MODEL_URI": str(bundle_dir)},
            ),
        )
    }


def _round(
    template: EmulatedFunction,
    single: dict[str, Any],
    batch: dict[str, Any],
    *,
    warm: int,
    batches: int,
) -> dict[str, float]:
    with replace(template) as function:
        first = function.invoke(single)
        if first.payload.get("statusCode") != 200:
            raise RuntimeError(f"{function.handler} answered {first.payload}: {function.log()}")
        warm_ms = [_duration(function.invoke(single)) for _ in range(warm)]
        batch_ms = [_duration(function.invoke(batch)) for _ in range(batches)]
        return {
            "init_ms": function.init_ms,
            "first_invoke_ms": _duration(first),
            "warm_p50_ms": statistics.median(warm_ms) if warm_ms else 0.0,
            "batch_p50_ms": statistics.median(batch_ms) if batch_ms else 0.0,
            "peak_rss_mb": function.peak_rss_mb(),
        }


def _duration(invocation: Any) -> float:
    if invocation.duration_ms is None:
        raise RuntimeError(f"a failed invocation: {invocation.payload}")
    return float(invocation.duration_ms)


def measure(
    bundle_dir: Path,
    rows: Sequence[dict[str, object]],
    work: Path,
    *,
    rounds: int = 5,
    warm: int = 200,
    batches: int = 20,
    progress: Callable[[str], None] = print,
) -> dict[str, Emulated] | None:
    """Medians per side, or None (said) when the emulator was not fetched."""
    if emulator_binary() is None:
        progress("SKIPPED: no Lambda emulator in .lambda-rie/ (make bench fetches it)")
        return None
    progress("building the layers and task roots for this machine")
    built = _build(work, bundle_dir)
    single, batch = predict_event(rows[0]), batch_event(rows[:1000])
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    for number in range(rounds + 1):
        for side in SIDES:
            warm_now, batches_now = (warm, batches) if number == rounds else (0, 0)
            result = _round(built[side], single, batch, warm=warm_now, batches=batches_now)
            if number > 0:  # round 0 warms the page cache
                runs[side].append(result)
    return {side: _medians(side_runs) for side, side_runs in runs.items()}


def _medians(runs: list[dict[str, float]]) -> Emulated:
    def median(field: str) -> float:
        return statistics.median(run[field] for run in runs)

    last = runs[-1]  # the warm figures come from the last round's long-lived environment
    return Emulated(
        init_ms=median("init_ms"),
        first_invoke_ms=median("first_invoke_ms"),
        warm_p50_ms=last["warm_p50_ms"],
        batch_p50_ms=last["batch_p50_ms"],
        peak_rss_mb=median("peak_rss_mb"),
        rounds=len(runs),
    )


def as_json(results: dict[str, Emulated]) -> dict[str, dict[str, float]]:
    return {side: asdict(result) for side, result in results.items()}
