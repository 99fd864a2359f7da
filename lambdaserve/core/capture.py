"""Prediction capture: one versioned record per prediction, with masking or hashing of named
fields, written to a sink (JSONL partitions locally; a structured log line that a CloudWatch
Logs subscription forwards to Firehose and S3 on AWS).

Partitions, the same locally and in S3 (Firehose prefix
``captures/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/``)::

    captures/dt=2026-11-27/hour=12/<part>.jsonl
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from lambdaserve.core.manifest import ClassLabel

CAPTURE_SCHEMA_VERSION = 1
CAPTURE_PREFIX = "captures"
#: The marker a CloudWatch Logs subscription filter selects capture lines by.
LOG_MARKER = "lambdaserve_capture"

FeatureValue = float | int | str | bool | None


class CaptureRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    captured_at: datetime
    prediction_id: str
    model_name: str
    model_version: str = Field(description="the bundle manifest's version")
    bundle_sha256: str
    function_version: str | None = Field(default=None, description="executed Lambda version")
    features: dict[str, FeatureValue]
    probability: float
    label: ClassLabel
    latency_ms: float
    flags: tuple[str, ...] = ()


class CapturePolicy(BaseModel):
    """Which fields never leave the function as they came: masked (dropped to null) or hashed
    (salted sha256, so equal values stay equal without being readable)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    mask: frozenset[str] = frozenset()
    hash: frozenset[str] = frozenset()
    salt: str = ""

    def apply(self, features: Mapping[str, FeatureValue]) -> dict[str, FeatureValue]:
        out: dict[str, FeatureValue] = {}
        for name, value in features.items():
            if name in self.mask:
                out[name] = None
            elif name in self.hash and value is not None:
                digest = hashlib.sha256(f"{self.salt}:{value}".encode()).hexdigest()[:16]
                out[name] = f"sha256:{digest}"
            else:
                out[name] = value
        return out

    @property
    def altered(self) -> frozenset[str]:
        """Fields whose captured values cannot be compared with the training reference."""
        return self.mask | self.hash


def partition(captured_at: datetime) -> str:
    return f"{CAPTURE_PREFIX}/dt={captured_at:%Y-%m-%d}/hour={captured_at:%H}"


class CaptureSink(Protocol):
    def write(self, records: Sequence[CaptureRecord]) -> None:
        """Persist the records; must not raise into the request path (log and count instead)."""
        ...


def parse_capture_line(line: str | bytes) -> CaptureRecord:
    """A capture line, ``{"lambdaserve_capture":1,...}``, as the predict function writes it."""
    payload = json.loads(line)
    if not isinstance(payload, dict) or payload.pop(LOG_MARKER, None) != 1:
        raise ValueError(f"not a capture line (no {LOG_MARKER!r} marker)")
    return CaptureRecord.model_validate(payload)
