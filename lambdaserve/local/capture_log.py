"""Prediction captures on local disk, laid out like the Firehose output in S3.

```
<store>/captures/dt=YYYY-MM-DD/hour=HH/part-<pid>.jsonl
```
Every line is the capture line the Lambda function prints, ``{"lambdaserve_capture":1,...}``,
so one reader serves both stores. Each process appends to its own part file of the hour the
record was captured in, under a lock, with one ``write()`` of whole lines per request: threads
never interleave and a reader only ever sees whole lines (plus, after a crash, at most one
partial last line, which it skips).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import overload

from pydantic_core import to_json

from lambdaserve.core.capture import (
    CAPTURE_PREFIX,
    LINE_HEAD,
    CaptureRecord,
    FeatureValue,
    FeedbackRecord,
    parse_stream_line,
    partition,
    record_time,
    stream_line,
)
from lambdaserve.core.errors import LambdaserveError
from lambdaserve.core.manifest import ClassLabel
from lambdaserve.core.times import as_utc

_HOUR = timedelta(hours=1)
#: A row's own values in a ``CaptureBatch``: prediction id, features, probability, label, flags.
CaptureRow = tuple[str, dict[str, FeatureValue], float, ClassLabel, tuple[str, ...]]
_ROW_FIELDS = frozenset({"prediction_id", "features", "probability", "label", "flags"})


#: A capture record's line (``stream_line``, under the name the capture side knows it by).
capture_line = stream_line


class CaptureBatch(Sequence[CaptureRecord]):
    """The records of one request as columns: what every row shares once (``shared``, a record
    whose per-row fields are placeholders), then each row's ``CaptureRow``: id, features,
    probability, label, flags.

    It is a ``Sequence[CaptureRecord]`` like any other (indexing builds the record), and the
    sinks of this project serialize it straight from the columns with ``text()``: no model
    object per row, one JSON encoding per row, ~3x cheaper on the request path.
    """

    __slots__ = ("_rows", "shared")

    def __init__(self, shared: CaptureRecord, rows: Sequence[CaptureRow]) -> None:
        self.shared = shared
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> CaptureRecord: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[CaptureRecord]: ...

    def __getitem__(self, index: int | slice) -> CaptureRecord | Sequence[CaptureRecord]:
        if isinstance(index, slice):
            return CaptureBatch(self.shared, self._rows[index])
        return self.shared.model_copy(update=_own_fields(self._rows[index]))

    def text(self) -> str:
        """Every record's capture line, in order (the same JSON as ``capture_line`` gives)."""
        shared = {k: v for k, v in self.shared.__dict__.items() if k not in _ROW_FIELDS}
        head = LINE_HEAD + to_json(shared).decode()[1:-1] + ","
        return "".join(head + to_json(_own_fields(row)).decode()[1:] + "\n" for row in self._rows)


def _own_fields(row: CaptureRow) -> dict[str, object]:
    prediction_id, features, probability, label, flags = row
    return {
        "prediction_id": prediction_id,
        "features": features,
        "probability": probability,
        "label": label,
        "flags": flags,
    }


class CaptureLog:
    """A ``CaptureSink`` appending to this process's part file of each record's hour."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._open: tuple[tuple[int, ...], int] | None = None  # (hour and pid, descriptor)

    def write(self, records: Sequence[CaptureRecord]) -> None:
        self._write(records)

    def write_feedback(self, records: Sequence[FeedbackRecord]) -> None:
        """Feedback lines go to the partition of the hour they were received in."""
        self._write(records)

    def _write(self, records: Sequence[CaptureRecord] | Sequence[FeedbackRecord]) -> None:
        with self._lock:
            for moment, text in _by_time(records).items():
                descriptor = self._descriptor(as_utc(moment))
                data = text.encode()
                written = os.write(descriptor, data)
                while written < len(data):  # regular files take it all at once; be safe anyway
                    written += os.write(descriptor, data[written:])

    def close(self) -> None:
        with self._lock:
            if self._open is not None:
                os.close(self._open[1])
                self._open = None

    def _descriptor(self, captured_at: datetime) -> int:
        """This process's open part file of the record's hour (strftime is slow: compare ints;
        the pid too, so a forked child opens a part file of its own)."""
        pid = os.getpid()
        hour = (captured_at.year, captured_at.month, captured_at.day, captured_at.hour, pid)
        if self._open is not None and self._open[0] == hour:
            return self._open[1]
        if self._open is not None:
            os.close(self._open[1])
            self._open = None
        path = self.root / partition(captured_at) / f"part-{pid}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._open = (hour, descriptor)
        return descriptor


def stream_text(records: Sequence[CaptureRecord] | Sequence[FeedbackRecord]) -> str:
    """The records' lines, in order (a ``CaptureBatch`` straight from its columns)."""
    if isinstance(records, CaptureBatch):
        return records.text()
    return "".join(stream_line(record) for record in records)


def _by_time(records: Sequence[CaptureRecord] | Sequence[FeedbackRecord]) -> dict[datetime, str]:
    """The lines to write, by capture or receipt time (a request's records share theirs)."""
    if isinstance(records, CaptureBatch):
        return {records.shared.captured_at: records.text()} if records else {}
    lines: dict[datetime, list[str]] = {}
    for record in records:
        lines.setdefault(record_time(record), []).append(stream_line(record))
    return {moment: "".join(chunk) for moment, chunk in lines.items()}


def captures_dir(root_or_dir: Path) -> Path:
    """The ``captures`` directory of a store root, or the directory itself when it is one."""
    path = Path(root_or_dir)
    if path.name == CAPTURE_PREFIX or next(path.glob("dt=*"), None) is not None:
        return path
    return path / CAPTURE_PREFIX


def _part_files(directory: Path, start: datetime, end: datetime) -> Iterator[Path]:
    """Part files of the hour partitions that overlap [start, end)."""
    for day in sorted(directory.glob("dt=*")):
        for hour in sorted(day.glob("hour=*")):
            try:
                opens = datetime.strptime(f"{day.name[3:]} {hour.name[5:]}", "%Y-%m-%d %H")
            except ValueError:
                continue  # not a partition of ours
            opens = opens.replace(tzinfo=UTC)
            if opens < end and opens + _HOUR > start:
                yield from sorted(hour.glob("*.jsonl"))


def read_stream(
    root_or_dir: Path, start: datetime, end: datetime
) -> Iterator[CaptureRecord | FeedbackRecord]:
    """Capture and feedback records of [start, end) (capture or receipt time), partition by
    partition (each part file in write order).

    A last line cut short by a crash is skipped; any other line that is not a record of the
    stream is an error naming the file and line.
    """
    start, end = as_utc(start), as_utc(end)
    for part in _part_files(captures_dir(root_or_dir), start, end):
        with part.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.endswith(b"\n"):
                    continue  # a write cut short by a crash
                try:
                    record = parse_stream_line(line)
                except ValueError as exc:  # json and pydantic errors alike
                    raise LambdaserveError(
                        f"{part}:{number} is not a capture record ({type(exc).__name__})"
                    ) from exc
                if start <= as_utc(record_time(record)) < end:
                    yield record


def read_captures(root_or_dir: Path, start: datetime, end: datetime) -> Iterator[CaptureRecord]:
    """Prediction records captured in [start, end) (feedback lines are passed over)."""
    for record in read_stream(root_or_dir, start, end):
        if isinstance(record, CaptureRecord):
            yield record


def read_feedback(root_or_dir: Path, start: datetime, end: datetime) -> Iterator[FeedbackRecord]:
    """Feedback records received in [start, end)."""
    for record in read_stream(root_or_dir, start, end):
        if isinstance(record, FeedbackRecord):
            yield record
