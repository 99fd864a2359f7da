"""Capture sinks of the serving path: ``LogLineSink`` on Lambda, ``MemorySink`` in tests.

(The local sink, ``CaptureLog``, writes JSONL partitions under the store: lambdaserve.local.)

On Lambda a capture is one line of compact JSON on stdout, ``{"lambdaserve_capture":1,...}``.
The function's stdout goes to CloudWatch Logs through the Lambda service, outside the request: a
CloudWatch Logs subscription filter ``{ $.lambdaserve_capture = 1 }`` forwards the lines to
the model's Firehose stream, which writes them to S3 under
``captures/model=<name>/dt=YYYY-MM-DD/hour=HH/``. The request pays only for serializing (~2-3 us
per record) and one write of all its lines to the stdout pipe.
Feedback records (``POST /feedback``) are printed the same way, with the same marker, so they
ride the same pipeline into the same partitions (``"kind": "feedback"`` tells them apart).

Calling Firehose from the function instead (``PutRecordBatch``) would cost a network round trip
inside every request, or a buffer flushed later that is lost when the execution environment is
frozen between requests or shut down; the log subscription is the path that adds no latency and
loses nothing once the line is written.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import TextIO

from lambdaserve.kernel.capture import CaptureRecord, FeedbackRecord
from lambdaserve.kernel.capture_lines import stream_text


class LogLineSink:
    """Prints one capture line per record (the marker first) and flushes before returning."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream  # None: whatever sys.stdout is at write time
        self._lock = threading.Lock()

    def write(self, records: Sequence[CaptureRecord]) -> None:
        self._print(records)

    def write_feedback(self, records: Sequence[FeedbackRecord]) -> None:
        """The same stream and marker: the log subscription ships feedback with captures."""
        self._print(records)

    def _print(self, records: Sequence[CaptureRecord] | Sequence[FeedbackRecord]) -> None:
        if not records:
            return
        text = stream_text(records)
        stream = self._stream or sys.stdout
        with self._lock:  # lines of concurrent requests never interleave
            stream.write(text)
            stream.flush()


class MemorySink:
    """Keeps every record in a list (tests and notebooks)."""

    def __init__(self) -> None:
        self.records: list[CaptureRecord] = []
        self.feedback: list[FeedbackRecord] = []
        self._lock = threading.Lock()

    def write(self, records: Sequence[CaptureRecord]) -> None:
        with self._lock:
            self.records.extend(records)

    def write_feedback(self, records: Sequence[FeedbackRecord]) -> None:
        with self._lock:
            self.feedback.extend(records)
