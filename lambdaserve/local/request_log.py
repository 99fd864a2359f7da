"""The local gateway's request log: one JSON line per HTTP request, partitioned by hour.

```
<root>/metrics/<function>/dt=YYYY-MM-DD/hour=HH/part-<pid>.jsonl
```
It plays the part of Lambda's per-executed-version CloudWatch metrics: ``signals_since`` turns
it into the ``VersionSignals`` the rollout guard compares. Each process appends to its own part
file with one ``write()`` of a whole line per record, under a lock, so concurrent threads never
interleave and a reader only ever sees whole lines (plus, after a crash, at most one partial last
line, which it skips).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lambdaserve.kernel.times import as_utc
from lambdaserve.rollout.guard import OutputKind, VersionSignals


@dataclass(frozen=True)
class RequestRecord:
    ts: datetime
    function_version: str
    model_version: str
    path: str
    status: int
    latency_ms: float
    rows: int = 0
    scores: list[float] = field(default_factory=list)
    #: What ``scores`` hold (probabilities or regression predictions), or "class": ``labels``.
    output: OutputKind = "probability"
    labels: list[str] = field(default_factory=list)

    def to_line(self) -> bytes:
        payload = {**asdict(self), "ts": self.ts.astimezone(UTC).isoformat()}
        return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


def metrics_dir(root: Path, function_name: str) -> Path:
    return Path(root) / "metrics" / function_name


def _partition(ts: datetime) -> str:
    return f"dt={ts:%Y-%m-%d}/hour={ts:%H}"


class RequestLog:
    """Appends records to this process's part file of the current hour."""

    def __init__(self, root: Path, function_name: str = "predict") -> None:
        self.directory = metrics_dir(root, function_name)
        self._lock = threading.Lock()
        self._open: tuple[Path, int] | None = None

    def append(self, record: RequestRecord) -> None:
        line = record.to_line()
        path = self.directory / _partition(record.ts.astimezone(UTC)) / f"part-{os.getpid()}.jsonl"
        with self._lock:
            descriptor = self._descriptor(path)
            written = os.write(descriptor, line)
            while written < len(line):  # regular files take it all at once; be safe anyway
                written += os.write(descriptor, line[written:])

    def close(self) -> None:
        with self._lock:
            if self._open is not None:
                os.close(self._open[1])
                self._open = None

    def _descriptor(self, path: Path) -> int:
        if self._open is not None and self._open[0] == path:
            return self._open[1]
        if self._open is not None:
            os.close(self._open[1])
            self._open = None
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._open = (path, descriptor)
        return descriptor


def _part_files(directory: Path, since: datetime, until: datetime | None) -> Iterator[Path]:
    first = since.replace(minute=0, second=0, microsecond=0)
    for day in sorted(directory.glob("dt=*")):
        for hour in sorted(day.glob("hour=*")):
            try:
                start = datetime.strptime(f"{day.name[3:]} {hour.name[5:]}", "%Y-%m-%d %H").replace(
                    tzinfo=UTC
                )
            except ValueError:
                continue  # not a partition of ours
            if start < first or (until is not None and start > until):
                continue
            yield from sorted(hour.glob("part-*.jsonl"))


def read_records(
    root: Path, function_name: str, since: datetime, until: datetime | None = None
) -> Iterator[RequestRecord]:
    """Records with ``since <= ts`` (and ``ts <= until``), partition by partition."""
    since, until = as_utc(since), (as_utc(until) if until is not None else None)
    for part in _part_files(metrics_dir(root, function_name), since, until):
        with part.open("rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    continue  # a write cut short by a crash
                record = _record(json.loads(line))
                if record.ts >= since and (until is None or record.ts <= until):
                    yield record


def _record(raw: dict[str, Any]) -> RequestRecord:
    return RequestRecord(
        ts=datetime.fromisoformat(raw["ts"]),
        function_version=str(raw["function_version"]),
        model_version=str(raw["model_version"]),
        path=str(raw["path"]),
        status=int(raw["status"]),
        latency_ms=float(raw["latency_ms"]),
        rows=int(raw["rows"]),
        scores=[float(score) for score in raw["scores"]],
        output=raw.get("output", "probability"),
        labels=[str(label) for label in raw.get("labels", ())],
    )


def signals_since(
    root: Path,
    function_name: str,
    since: datetime,
    versions: Iterable[str],
    *,
    until: datetime | None = None,
) -> dict[str, VersionSignals]:
    """What each function version did with prediction requests since ``since``: 5XX are server
    errors, 4XX invalid inputs (422 validation, 413 oversized), scores the positive-class
    probabilities (or regression predictions) and labels the multiclass classes of successful
    predictions. Health checks and docs do not count, so a health
    poller cannot satisfy a step's minimum-sample rule."""
    signals = {version: VersionSignals() for version in versions}
    for record in read_records(root, function_name, since, until):
        version = signals.get(record.function_version)
        if version is None or not record.path.startswith("/predict"):
            continue
        version.requests += 1
        version.server_errors += record.status >= 500
        version.invalid_inputs += 400 <= record.status < 500
        version.latencies_ms.append(record.latency_ms)
        version.scores.extend(record.scores)
        version.labels.extend(record.labels)
        if record.scores:
            version.score_kind = record.output
    return signals
