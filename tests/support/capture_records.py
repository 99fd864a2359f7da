"""Capture records of a named model, for the tests of per-model capture partitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lambdaserve.kernel.capture import CaptureRecord

NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
PREDICTION_ID = "01JDQ4Z8Y2M7T0000000000000"


def record(model: str, prediction_id: str, at: datetime = NOON, **changes: Any) -> CaptureRecord:
    return CaptureRecord(
        captured_at=at,
        prediction_id=prediction_id,
        model_name=model,
        model_version="1",
        bundle_sha256="ab" * 32,
        features={"amount": 1.5},
        probability=0.25,
        label=0,
        latency_ms=1.0,
        **changes,
    )
