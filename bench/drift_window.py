"""One drift window at scale: can a single drift Lambda invocation judge an hour of traffic?

``python -m bench.drift_window [--rows 1000000] [--lines 100000] [--parse-lines 20000]``

Data: a synthetic window of 1,000,000 captured rows x 20 features (15 numeric: normal, lognormal
and Poisson, 2% missing; 5 categorical with 3 to 30 categories, 2% missing) and a score, built
vectorized as numpy columns; the reference is profiled from another 50,000 rows the same way
training does (``lambdaserve.kernel.reference``).

Cases, each in a fresh process (so one case's memory cannot hide another's), each timed and
with its peak memory measured as the rise of the process's resident set over what it held
before the case (Linux ``VmHWM`` reset through ``/proc/self/clear_refs``; elsewhere the whole
process's ``ru_maxrss``, which includes the input data):

1. ours, one pass: ``FeatureWindows.from_columns`` over the 1M-row columns;
2. ours, merge path: 10 chunks of 100k binned separately and merged (what split workers do),
   checked equal to the one-pass histograms;
3. baseline, naive pandas: a DataFrame of the columns, ``pd.cut`` on the reference edges +
   ``value_counts`` per numeric feature, ``value_counts(dropna=False)`` per categorical one,
   checked equal to ours on the numeric features;
4. ours, the realistic path: JSONL capture lines on disk in the partition layout, written as the
   predict function writes them (``CaptureBatch``), read with the local capture reader and
   judged end to end by ``run_drift`` (parsing every line into a ``CaptureRecord``, streaming
   accumulation, statistics, the report and its HTML page). Measured at ``--lines`` and half of
   it, and *extrapolated linearly* to the full window: the time per line is what the
   measurements show; memory is bounded by the chunk size, not the line count (both sizes are
   shown to check it). S3 download time is not included.
5. parsing alone, line to record: ``--parse-lines`` of those lines (bytes, as both readers get
   them) through ``parse_stream_line`` and through the path it replaced (``json.loads``, the
   marker popped, ``model_validate``: ``json_pydantic_parse`` here), every record checked equal
   (values and their types), then each timed over all the lines in alternating rounds (wall
   clock and CPU time), best of ``--rounds``. The aim is 5 us per line or less (wall clock).

The target is one Lambda invocation (at most 15 minutes and 10 GB); the aim is under a minute and
2 GB for the full window. Ratios are against the pandas baseline, and the parser's against the
json + pydantic path, measured in the same run.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.report import Check, at_most, checks_table, speedup, table
from lambdaserve.drift.histograms import FeatureWindows
from lambdaserve.drift.job import Baseline, run_drift
from lambdaserve.drift.report_store import DriftReportStore
from lambdaserve.kernel.capture import (
    CaptureRecord,
    FeatureValue,
    parse_decoded_line,
    parse_stream_line,
    partition,
)
from lambdaserve.kernel.capture_lines import CaptureBatch, Outputs
from lambdaserve.kernel.reference import (
    NumericReference,
    ReferenceProfile,
    categorical_reference,
    numeric_reference,
    score_reference,
)
from lambdaserve.kernel.schema import MISSING_CATEGORY, FeatureSchema, FeatureSpec
from lambdaserve.local.capture_log import read_captures

N_NUMERIC, N_CATEGORICAL = 15, 5
CATEGORY_COUNTS = (3, 5, 8, 12, 30)
REFERENCE_ROWS = 50_000
CHUNKS = 10
MODEL_NAME = "bench"
MISSING_RATE = 0.02
WINDOW_START = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
SCHEDULED = WINDOW_START + timedelta(hours=2, minutes=5)  # judges 10:00-11:00
LAMBDA_SECONDS, LAMBDA_MB = 15 * 60, 10 * 1024
AIM_SECONDS, AIM_MB = 60.0, 2 * 1024
AIM_PARSE_US = 5.0

Columns = dict[str, npt.NDArray[Any]]


def synthetic(rows: int, seed: int) -> tuple[Columns, npt.NDArray[np.float64]]:
    """``rows`` captured rows as columns (numeric float64 with NaN; categorical object arrays
    holding the encoded categories, ``MISSING_CATEGORY`` for missing) and positive scores."""
    rng = np.random.default_rng(seed)
    columns: Columns = {}
    for i in range(N_NUMERIC):
        if i % 3 == 0:
            values = rng.normal(50.0, 10.0, rows)
        elif i % 3 == 1:
            values = rng.lognormal(3.0, 0.7, rows)
        else:
            values = rng.poisson(3.0, rows).astype(np.float64)
        values[rng.random(rows) < MISSING_RATE] = np.nan
        columns[f"num_{i:02d}"] = values
    for j, count in enumerate(CATEGORY_COUNTS):
        categories = np.array(
            [*(f"c{j}_{c}" for c in range(count)), MISSING_CATEGORY], dtype=object
        )
        weights = 1.0 / np.arange(1, count + 1)  # Zipf-like: a few common, a long tail
        p = np.append(weights / weights.sum() * (1 - MISSING_RATE), MISSING_RATE)
        columns[f"cat_{j}"] = categories[rng.choice(count + 1, rows, p=p)]
    return columns, rng.beta(2.0, 5.0, rows)


def schema() -> FeatureSchema:
    numeric = [
        FeatureSpec(name=f"num_{i:02d}", kind="numeric", dtype="float", nullable=True)
        for i in range(N_NUMERIC)
    ]
    categorical = [
        FeatureSpec(name=f"cat_{j}", kind="categorical", dtype="string", nullable=True)
        for j in range(N_CATEGORICAL)
    ]
    return FeatureSchema(features=(*numeric, *categorical))


def reference() -> ReferenceProfile:
    columns, scores = synthetic(REFERENCE_ROWS, seed=1)
    features = {
        name: numeric_reference(values) if name.startswith("num") else categorical_reference(values)
        for name, values in columns.items()
    }
    return ReferenceProfile(rows=REFERENCE_ROWS, features=features, score=score_reference(scores))


# -- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_mb: float
    method: str
    extra: dict[str, Any]


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def measure(work: Callable[[], dict[str, Any]]) -> Measured:
    """Run ``work`` once: wall time, and the peak rise of resident memory while it ran."""
    gc.collect()
    reset = _reset_peak()
    before = _status_kb("VmRSS") or 0
    started = time.perf_counter()
    extra = work()
    seconds = time.perf_counter() - started
    peak = _status_kb("VmHWM") if reset else None
    if peak is not None:
        return Measured(seconds, (peak - before) / 1024, "RSS rise", extra)
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    whole = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1024 / 1024
    return Measured(seconds, whole, "process peak RSS", extra)


# -- the cases (each runs in its own process) -------------------------------------------------


def case_one_pass(rows: int) -> Measured:
    ref, (columns, scores) = reference(), synthetic(rows, seed=2)

    def work() -> dict[str, Any]:
        windows = FeatureWindows.from_columns(ref, columns, scores)
        return {"windows": windows.model_dump(mode="json")}

    return measure(work)


def case_merge(rows: int) -> Measured:
    ref, (columns, scores) = reference(), synthetic(rows, seed=2)
    size = -(-rows // CHUNKS)

    def work() -> dict[str, Any]:
        merged = FeatureWindows.empty(ref)
        for start in range(0, rows, size):
            part = {name: values[start : start + size] for name, values in columns.items()}
            merged = merged.merge(
                FeatureWindows.from_columns(ref, part, scores[start : start + size])
            )
        return {"windows": merged.model_dump(mode="json")}

    return measure(work)


def case_pandas(rows: int) -> Measured:
    import pandas as pd

    ref, (columns, scores) = reference(), synthetic(rows, seed=2)

    def work() -> dict[str, Any]:
        frame = pd.DataFrame(columns)
        numeric: dict[str, list[int]] = {}
        for name, profile in ref.features.items():
            if isinstance(profile, NumericReference):
                bins = [-np.inf, *profile.edges, np.inf]
                counts = pd.cut(frame[name], bins=bins).value_counts(sort=False)
                numeric[name] = [*map(int, counts), int(frame[name].isna().sum())]
            else:
                frame[name].value_counts(dropna=False)
        assert ref.score is not None  # a binary model's reference
        pd.cut(pd.Series(scores), bins=[-np.inf, *ref.score.edges, np.inf]).value_counts()
        return {"numeric": numeric}

    return measure(work)


def _capture_lines(rows: int) -> Iterator[str]:
    """The lines of ``rows`` single-row predictions, as the predict function writes them."""
    columns, scores = synthetic(rows, seed=3)
    step = timedelta(hours=1) / rows
    names = list(columns)
    values = [columns[name].tolist() for name in names]
    for i in range(rows):
        features: dict[str, FeatureValue] = {}
        for name, column in zip(names, values, strict=True):
            value = column[i]
            if name.startswith("num"):
                features[name] = None if value != value else value  # NaN is null in JSON
            else:
                features[name] = None if value == MISSING_CATEGORY else value
        shared = CaptureRecord.model_construct(
            captured_at=WINDOW_START + i * step,
            prediction_id="",
            model_name=MODEL_NAME,
            model_version="1",
            bundle_sha256="0" * 64,
            function_version="1",
            features={},
            latency_ms=0.4,
        )
        score = float(scores[i])
        outputs: Outputs = {"probability": score, "label": int(score >= 0.5)}
        yield CaptureBatch(shared, [(f"01J{i:023d}", features, outputs, ())]).text()


#: The baseline: how ``parse_stream_line`` parsed every line before (``json.loads``, the marker
#: popped, pydantic's ``model_validate`` of the dict); its general path still does.
json_pydantic_parse = parse_decoded_line


class _MemoryFiles:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def exists(self, name: str) -> bool:
        return name in self.files

    def create(self, name: str, body: bytes, content_type: str) -> bool:
        return self.files.setdefault(name, body) is body

    def read(self, name: str) -> bytes | None:
        return self.files.get(name)

    def names(self, prefix: str) -> list[str]:
        return [n for n in self.files if n.startswith(prefix)]


def case_jsonl(lines: int) -> Measured:
    ref, features = reference(), schema()
    with tempfile.TemporaryDirectory(prefix="lambdaserve-drift-bench-") as tmp:
        root = Path(tmp)
        part = root / partition(WINDOW_START, MODEL_NAME) / "part-0.jsonl"
        part.parent.mkdir(parents=True)
        with part.open("w") as handle:
            handle.writelines(_capture_lines(lines))
        size = part.stat().st_size

        def work() -> dict[str, Any]:
            (report,) = run_drift(
                SCHEDULED,
                captures=lambda start, end: read_captures(root, start, end, model=MODEL_NAME),
                references=lambda name, version: Baseline(ref, features, ()),
                reports=DriftReportStore(_MemoryFiles()),
            )
            return {"rows": report.rows, "bytes": size}

        return measure(work)


@dataclass(frozen=True)
class ParseTimes:
    """Seconds per line of each parser over the same lines, best of the rounds: wall clock, and
    the process's CPU time (what a busy machine's other processes do not add to)."""

    ours: float
    baseline: float
    ours_cpu: float
    baseline_cpu: float
    lines: int
    equal: bool


def _same(ours: object, baseline: object) -> bool:
    """Equal records, down to the type of every value (``1 == 1.0 == True`` in Python)."""
    return ours == baseline and repr(ours) == repr(baseline)


def case_parse(lines: int, rounds: int) -> ParseTimes:
    data = [line.encode() for line in _capture_lines(lines)]
    equal = all(_same(parse_stream_line(line), json_pydantic_parse(line)) for line in data)
    parsers = {"ours": parse_stream_line, "baseline": json_pydantic_parse}
    wall = dict.fromkeys(parsers, math.inf)
    cpu = dict.fromkeys(parsers, math.inf)
    for _ in range(rounds):
        for name, parse in parsers.items():
            gc.collect()
            started, started_cpu = time.perf_counter(), time.process_time()
            for line in data:
                parse(line)
            wall[name] = min(wall[name], (time.perf_counter() - started) / lines)
            cpu[name] = min(cpu[name], (time.process_time() - started_cpu) / lines)
    return ParseTimes(wall["ours"], wall["baseline"], cpu["ours"], cpu["baseline"], lines, equal)


def in_fresh_process[T](case: Callable[..., T], *args: int) -> T:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(case, *args).result()


# -- report ----------------------------------------------------------------------------------


def _fmt(seconds: float) -> str:
    return f"{seconds:.2f} s"


def parse_table(parsed: ParseTimes) -> str:
    """Both parsers per line (wall and CPU), the ratio, and the aim (``AIM_PARSE_US``, wall)."""
    ours, baseline = parsed.ours * 1e6, parsed.baseline * 1e6
    verdict = "PASS" if ours <= AIM_PARSE_US else "MISS"
    return table(
        (
            "parsing a capture line into its record",
            "lines",
            "per line",
            "CPU",
            "vs json + pydantic",
        ),
        [
            (
                "json + pydantic (the path replaced)",
                f"{parsed.lines:,}",
                f"{baseline:.2f} us",
                f"{parsed.baseline_cpu * 1e6:.2f} us",
                "1x",
            ),
            (
                "parse_stream_line (ours)",
                f"{parsed.lines:,}",
                f"{ours:.2f} us",
                f"{parsed.ours_cpu * 1e6:.2f} us",
                f"{baseline / ours:.2f}x faster",
            ),
            (f"aim: <= {AIM_PARSE_US:g} us per line", "", f"{ours:.2f} us", "", verdict),
        ],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--parse-lines", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5, help="parsing: best of this many")
    args = parser.parse_args(argv)
    rows, lines = args.rows, args.lines
    print(f"[bench] one window: {rows:,} rows x {N_NUMERIC + N_CATEGORICAL} features", flush=True)
    one = in_fresh_process(case_one_pass, rows)
    merge = in_fresh_process(case_merge, rows)
    naive = in_fresh_process(case_pandas, rows)
    if merge.extra["windows"] != one.extra["windows"]:
        print("MISMATCH: merged chunks differ from the one-pass histograms")
        return 1
    ours_numeric = {
        name: [*w["counts"], w["missing"]]
        for name, w in one.extra["windows"]["features"].items()
        if w["kind"] == "numeric"
    }
    if ours_numeric != naive.extra["numeric"]:
        print("MISMATCH: pandas and ours bin the numeric features differently")
        return 1
    print(f"[bench] realistic path: {lines // 2:,} and {lines:,} JSONL capture lines", flush=True)
    half = in_fresh_process(case_jsonl, lines // 2)
    full = in_fresh_process(case_jsonl, lines)
    per_line = (full.seconds - half.seconds) / (lines - lines // 2)
    extrapolated = full.seconds + per_line * (rows - lines)
    mb_per_line = full.extra["bytes"] / lines / 1024 / 1024
    print(f"[bench] parsing: {args.parse_lines:,} lines, best of {args.rounds}", flush=True)
    parsed = in_fresh_process(case_parse, args.parse_lines, args.rounds)
    if not parsed.equal:
        print("MISMATCH: parse_stream_line and json + pydantic give different records")
        return 1

    print()
    print(
        table(
            ("case", "rows", "wall", "peak memory", "measured as"),
            [
                (
                    "ours: one pass",
                    f"{rows:,}",
                    _fmt(one.seconds),
                    f"{one.peak_mb:,.0f} MB",
                    one.method,
                ),
                (
                    f"ours: {CHUNKS} chunks merged",
                    f"{rows:,}",
                    _fmt(merge.seconds),
                    f"{merge.peak_mb:,.0f} MB",
                    merge.method,
                ),
                (
                    "naive pandas (cut + value_counts)",
                    f"{rows:,}",
                    _fmt(naive.seconds),
                    f"{naive.peak_mb:,.0f} MB",
                    naive.method,
                ),
                (
                    "ours: JSONL -> run_drift",
                    f"{lines // 2:,}",
                    _fmt(half.seconds),
                    f"{half.peak_mb:,.0f} MB",
                    half.method,
                ),
                (
                    "ours: JSONL -> run_drift",
                    f"{lines:,}",
                    _fmt(full.seconds),
                    f"{full.peak_mb:,.0f} MB",
                    full.method,
                ),
                (
                    "ours: JSONL -> run_drift (extrapolated)",
                    f"{rows:,}",
                    _fmt(extrapolated),
                    f"~{full.peak_mb:,.0f} MB (chunked)",
                    f"{per_line * 1e6:.1f} us/line",
                ),
            ],
        )
    )
    print(
        f"\nJSONL lines average {full.extra['bytes'] / lines:,.0f} bytes: the full window is "
        f"~{mb_per_line * rows:,.0f} MB of captures (streamed, never held)."
    )
    checks: list[Check] = [
        speedup("one pass vs naive pandas", one.seconds, naive.seconds, 1.0, "s"),
        at_most("one pass peak memory vs naive pandas", one.peak_mb, naive.peak_mb, 0.5, "MB"),
        speedup("merge path vs naive pandas", merge.seconds, naive.seconds, 1.0, "s"),
        at_most("merge path peak memory vs naive pandas", merge.peak_mb, naive.peak_mb, 0.5, "MB"),
        speedup(
            "parse_stream_line vs json + pydantic",
            parsed.ours * 1e6,
            parsed.baseline * 1e6,
            3.0,
            "us",
        ),
    ]
    print()
    print(parse_table(parsed))
    print()
    print(checks_table(checks))
    aims = [
        ("one pass", one.seconds, one.peak_mb),
        ("merge path", merge.seconds, merge.peak_mb),
        ("JSONL path, extrapolated", extrapolated, full.peak_mb),
    ]
    print()
    print(
        table(
            (
                "window of 1M rows",
                "wall",
                "peak",
                "fits one Lambda (15 min, 10 GB)",
                "aim (1 min, 2 GB)",
            ),
            [
                (
                    name,
                    _fmt(seconds),
                    f"{mb:,.0f} MB",
                    "PASS" if seconds <= LAMBDA_SECONDS and mb <= LAMBDA_MB else "MISS",
                    "PASS" if seconds <= AIM_SECONDS and mb <= AIM_MB else "MISS",
                )
                for name, seconds, mb in aims
            ],
        )
    )
    print(f"\n(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
