"""Prediction captures on local disk, laid out like the Firehose output in S3: one partition
tree per model.

```
<store>/captures/model=<model_name>/dt=YYYY-MM-DD/hour=HH/part-<pid>.jsonl
```
Every line is the capture line the Lambda function prints, ``{"lambdaserve_capture":1,...}``,
so one reader serves both stores. Each process appends to its own part file of the record's
model and hour (captured, or received for feedback), under a lock, with one ``write()`` of whole
lines per request: threads never interleave and a reader only ever sees whole lines (plus, after
a crash, at most one partial last line, which it skips). A reader of one model reads only its
tree; a reader of every model reads each ``model=*`` tree.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lambdaserve.kernel.capture import (
    CAPTURE_PREFIX,
    MODEL_KEY,
    CaptureRecord,
    FeedbackRecord,
    is_model_name,
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
    """A ``CaptureSink`` appending to this process's part file of each record's model and hour."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        #: Per model: the (hour, pid) of its open part file, and the descriptor.
        self._open: dict[str, tuple[tuple[int, ...], int]] = {}

    def write(self, records: Sequence[CaptureRecord]) -> None:
        self._write(records)

    def write_feedback(self, records: Sequence[FeedbackRecord]) -> None:
        """Feedback lines go to their model's partition of the hour they were received in."""
        self._write(records)

    def _write(self, records: Sequence[CaptureRecord] | Sequence[FeedbackRecord]) -> None:
        with self._lock:
            for (model, moment), text in _by_partition(records).items():
                descriptor = self._descriptor(model, as_utc(moment))
                data = text.encode()
                written = os.write(descriptor, data)
                while written < len(data):  # regular files take it all at once; be safe anyway
                    written += os.write(descriptor, data[written:])

    def close(self) -> None:
        with self._lock:
            for _, descriptor in self._open.values():
                os.close(descriptor)
            self._open.clear()

    def _descriptor(self, model: str, captured_at: datetime) -> int:
        """This process's open part file of the model's hour (strftime is slow: compare ints;
        the pid too, so a forked child opens a part file of its own)."""
        pid = os.getpid()
        hour = (captured_at.year, captured_at.month, captured_at.day, captured_at.hour, pid)
        held = self._open.get(model)
        if held is not None and held[0] == hour:
            return held[1]
        if not is_model_name(model):
            raise LambdaserveError(f"captures name an invalid model {model!r}: not written")
        if held is not None:
            os.close(held[1])
            del self._open[model]
        path = self.root / partition(captured_at, model) / f"part-{pid}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._open[model] = (hour, descriptor)
        return descriptor


_Partition = tuple[str, datetime]


def _by_partition(
    records: Sequence[CaptureRecord] | Sequence[FeedbackRecord],
) -> dict[_Partition, str]:
    """The lines to write, by model and capture or receipt time (a request's records share
    both)."""
    if isinstance(records, CaptureBatch):
        shared = records.shared
        return {(shared.model_name, shared.captured_at): records.text()} if records else {}
    lines: dict[_Partition, list[str]] = {}
    for record in records:
        lines.setdefault((record.model_name, record_time(record)), []).append(stream_line(record))
    return {key: "".join(chunk) for key, chunk in lines.items()}


def captures_dir(root_or_dir: Path) -> Path:
    """The ``captures`` directory of a store root, or the directory itself when it is one
    (named ``captures``, or holding ``model=*`` trees)."""
    path = Path(root_or_dir)
    if path.name == CAPTURE_PREFIX or next(path.glob(f"{MODEL_KEY}*"), None) is not None:
        return path
    return path / CAPTURE_PREFIX


def _model_trees(directory: Path, model: str | None) -> list[Path]:
    """The partition tree of ``model`` (an invalid name is an error), or every model's."""
    if model is None:
        return sorted(path for path in directory.glob(f"{MODEL_KEY}*") if path.is_dir())
    if not is_model_name(model):
        raise LambdaserveError(f"{model!r} is not a model name: no captures to read")
    return [directory / f"{MODEL_KEY}{model}"]


def _part_files(
    directory: Path, start: datetime, end: datetime, model: str | None
) -> Iterator[Path]:
    """Part files of the hour partitions that overlap [start, end), by hour, then model."""
    found: list[tuple[datetime, str, Path]] = []
    for tree in _model_trees(directory, model):
        for day in tree.glob("dt=*"):
            for hour in day.glob("hour=*"):
                try:
                    opens = datetime.strptime(f"{day.name[3:]} {hour.name[5:]}", "%Y-%m-%d %H")
                except ValueError:
                    continue  # not a partition of ours
                opens = opens.replace(tzinfo=UTC)
                if opens < end and opens + _HOUR > start:
                    found.append((opens, tree.name, hour))
    for _, _, hour in sorted(found):
        yield from sorted(hour.glob("*.jsonl"))


def read_stream(
    root_or_dir: Path, start: datetime, end: datetime, *, model: str | None = None
) -> Iterator[CaptureRecord | FeedbackRecord]:
    """Capture and feedback records of [start, end) (capture or receipt time) of ``model``'s
    tree, or of every model's (None), partition by partition: by hour, then model (each part
    file in write order).

    A last line cut short by a crash is skipped; any other line that is not a record of the
    stream is an error naming the file and line.
    """
    start, end = as_utc(start), as_utc(end)
    for part in _part_files(captures_dir(root_or_dir), start, end, model):
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


def read_captures(
    root_or_dir: Path, start: datetime, end: datetime, *, model: str | None = None
) -> Iterator[CaptureRecord]:
    """Prediction records captured in [start, end) of ``model``, or of every model (None);
    feedback lines are passed over."""
    for record in read_stream(root_or_dir, start, end, model=model):
        if isinstance(record, CaptureRecord):
            yield record


def read_feedback(
    root_or_dir: Path, start: datetime, end: datetime, *, model: str | None = None
) -> Iterator[FeedbackRecord]:
    """Feedback records received in [start, end) of ``model``, or of every model (None)."""
    for record in read_stream(root_or_dir, start, end, model=model):
        if isinstance(record, FeedbackRecord):
            yield record
