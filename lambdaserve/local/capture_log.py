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

from lambdaserve.kernel.capture import (
    CAPTURE_PREFIX,
    CaptureRecord,
    FeedbackRecord,
    parse_stream_line,
    partition,
    record_time,
    stream_line,
)
from lambdaserve.kernel.capture_lines import CaptureBatch
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.kernel.times import as_utc

_HOUR = timedelta(hours=1)
#: A capture record's line (``stream_line``, under the name the capture side knows it by).
capture_line = stream_line


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
