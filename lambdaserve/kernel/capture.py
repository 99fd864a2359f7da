"""Prediction capture: one versioned record per prediction, with masking or hashing of named
fields, written to a sink (JSONL partitions locally; a structured log line that a CloudWatch
Logs subscription forwards to Firehose and S3 on AWS).

Ground-truth feedback travels the same way: a ``FeedbackRecord`` (``"kind": "feedback"``) names
the ``prediction_id`` it labels and the observed class, in the same stream and partitions
(by the time it was received), so the capture pipeline carries both without another stream.

Partitions, one tree per model, the same locally and in S3 (each model's Firehose stream
writes under ``captures/model=<model_name>/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/``;
the local log by each record's ``model_name``)::

    captures/model=churn/dt=2026-11-27/hour=12/<part>.jsonl

so a reader of one model lists only its own tree (``model_prefix``), and a reader of every
model discovers the ``model=*`` trees under ``captures/``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import to_json

from lambdaserve.kernel.manifest import ClassLabel

CAPTURE_SCHEMA_VERSION = 1
CAPTURE_PREFIX = "captures"
#: How a model's partition tree is named under ``captures/``: ``model=<model_name>``.
MODEL_KEY = "model="
#: A model name as bundles, captures and partitions spell it (the manifest's pattern).
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: The marker a CloudWatch Logs subscription filter selects capture lines by.
LOG_MARKER = "lambdaserve_capture"
#: How every line of the stream starts: the marker first.
LINE_HEAD = f'{{"{LOG_MARKER}":1,'
_HEAD = LINE_HEAD.encode()
#: How ``stream_line`` starts a feedback line (it writes a record's fields in their order).
_FEEDBACK_HEAD = f'{LINE_HEAD}"schema_version":1,"kind":"feedback",'.encode()

_MODEL_NAME = re.compile(MODEL_NAME_PATTERN)

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
    probability: float | None = Field(
        default=None, description="binary classification: the positive class's probability"
    )
    label: ClassLabel | None = Field(default=None, description="classification: the class served")
    probabilities: dict[str, float] | None = Field(
        default=None, description="multiclass classification: every class's probability"
    )
    prediction: float | None = Field(default=None, description="regression: the number served")
    latency_ms: float
    flags: tuple[str, ...] = ()

    @property
    def score(self) -> float | None:
        """The one number drift and the guard follow: the positive class's probability, or the
        regression prediction (multiclass answers have none: their class shares are followed)."""
        return self.probability if self.probability is not None else self.prediction


#: A prediction id as ``prediction_ids`` makes it (ULID layout, Crockford base32).
PREDICTION_ID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"


class FeedbackRecord(BaseModel):
    """The observed outcome of one earlier prediction (its ground truth)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    kind: Literal["feedback"] = "feedback"
    received_at: datetime
    prediction_id: str = Field(pattern=PREDICTION_ID_PATTERN)
    model_name: str = Field(description="the model the feedback was sent to")
    label: ClassLabel | None = Field(
        default=None, description="classification: the class that was actually observed"
    )
    value: float | None = Field(
        default=None, description="regression: the number that was actually observed"
    )

    @model_validator(mode="after")
    def _one_outcome(self) -> Self:
        if (self.label is None) == (self.value is None):
            raise ValueError("feedback carries a label (classification) or a value (regression)")
        return self


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

    def unknown_fields(self, features: Iterable[str]) -> str | None:
        """Why this policy cannot guard a model with these ``features`` (names are compared
        exactly, case included), or ``None``: a name that matches no feature would let the
        feature it meant be captured raw."""
        known = set(features)
        problems = [
            f"{variable} names {', '.join(sorted(names - known))}"
            for variable, names in (("CAPTURE_MASK", self.mask), ("CAPTURE_HASH", self.hash))
            if names - known
        ]
        if not problems:
            return None
        return (
            f"capture policy refused: {'; '.join(problems)}, which match no feature of the model "
            "(names are case-sensitive); nothing is served or captured until the policy is fixed"
        )


class CapturePolicyDocument(BaseModel):
    """The policy as a stage stores it outside any function version (an SSM parameter on AWS,
    ``{"enabled": true, "mask": [...], "hash": [...]}``), so a change reaches every version
    already serving; the salt is never in it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    mask: frozenset[str] = frozenset()
    hash: frozenset[str] = frozenset()

    def policy(self, salt: str) -> CapturePolicy:
        if self.hash and not salt:
            raise ValueError("the policy hashes fields and no salt is available")
        return CapturePolicy(enabled=self.enabled, mask=self.mask, hash=self.hash, salt=salt)


class CapturePolicySource(Protocol):
    """Where the policy in force comes from when it may change while a version serves."""

    def current(self) -> CapturePolicy:
        """The policy in force now (cheap: sources cache); raises
        ``CapturePolicyUnavailableError`` when it cannot be known."""
        ...


def parse_field_names(value: object) -> object:
    """``CAPTURE_MASK``/``CAPTURE_HASH`` as the environment spells them: ``a,b`` or a JSON list
    ``["a", "b"]``, blanks ignored (a pydantic before-validator; other values pass through)."""
    if isinstance(value, str):
        text = value.strip()
        names = json.loads(text) if text.startswith("[") else text.split(",")
        return frozenset(str(name).strip() for name in names if str(name).strip())
    return value


def model_prefix(model_name: str) -> str:
    """The key prefix of a model's partition tree, ``captures/model=<model_name>/`` (the slash
    keeps ``churn`` from matching ``churn2``; the name is not checked: see ``is_model_name``)."""
    return f"{CAPTURE_PREFIX}/{MODEL_KEY}{model_name}/"


def partition(captured_at: datetime, model_name: str) -> str:
    """The hour partition of a model's records, ``captures/model=<m>/dt=YYYY-MM-DD/hour=HH``."""
    return f"{model_prefix(model_name)}dt={captured_at:%Y-%m-%d}/hour={captured_at:%H}"


def is_model_name(name: str) -> bool:
    """Whether ``name`` is a model name (``MODEL_NAME_PATTERN``): safe as one path segment."""
    return _MODEL_NAME.fullmatch(name) is not None


class CaptureSink(Protocol):
    def write(self, records: Sequence[CaptureRecord]) -> None:
        """Persist the records; must not raise into the request path (log and count instead)."""
        ...

    def write_feedback(self, records: Sequence[FeedbackRecord]) -> None:
        """Persist feedback records; raising is allowed (the feedback request then fails)."""
        ...


#: The records' validators of JSON (bound once: a lookup less per line).
_CAPTURE_JSON = CaptureRecord.__pydantic_validator__.validate_json
_FEEDBACK_JSON = FeedbackRecord.__pydantic_validator__.validate_json


def parse_stream_line(line: str | bytes) -> CaptureRecord | FeedbackRecord:
    """A line of the capture stream, ``{"lambdaserve_capture":1,...}``: a prediction's capture
    record, or a feedback record (``"kind": "feedback"``).

    A line that starts as ``stream_line`` starts one is validated straight from its bytes by
    pydantic-core in strict mode, the marker cut off (~3x faster than decoding it first). Any
    other line, or one that strict validation refuses, is decoded and validated as it always
    was: what is accepted, its values and the error raised (a ``ValueError``) are unchanged.
    """
    data = line if isinstance(line, bytes) else line.encode(errors="surrogatepass")
    if data.startswith(_HEAD):
        validate = _FEEDBACK_JSON if data.startswith(_FEEDBACK_HEAD) else _CAPTURE_JSON
        try:  # strict: each JSON value has its exact type, and the value lax validation gives
            record: CaptureRecord | FeedbackRecord = validate(
                data.replace(_HEAD, b"{", 1), strict=True
            )
        except ValueError:
            pass
        else:
            return record
    return parse_decoded_line(line)


def parse_decoded_line(line: str | bytes) -> CaptureRecord | FeedbackRecord:
    """The general path: ``json`` decodes the line, the marker is popped, pydantic validates."""
    payload = json.loads(line)
    if not isinstance(payload, dict) or payload.pop(LOG_MARKER, None) != 1:
        raise ValueError(f"not a capture line (no {LOG_MARKER!r} marker)")
    if payload.get("kind") == "feedback":
        return FeedbackRecord.model_validate(payload)
    return CaptureRecord.model_validate(payload)


def parse_capture_line(line: str | bytes) -> CaptureRecord:
    """A capture line, ``{"lambdaserve_capture":1,...}``, as the predict function writes it."""
    record = parse_stream_line(line)
    if not isinstance(record, CaptureRecord):
        raise ValueError("a feedback line, not a capture record")
    return record


#: Output fields a record of another task leaves unset: lines carry only the task's own.
OUTPUT_FIELDS = frozenset({"probability", "label", "probabilities", "prediction", "value"})


def stream_line(record: CaptureRecord | FeedbackRecord) -> str:
    """One compact JSON line (newline included) with the marker the log subscription selects.

    The fields are serialized by type inference from the record's ``__dict__``: the same JSON as
    ``model_dump_json()`` for these plain types (a test holds the two equal) at half the cost,
    without the outputs of other tasks (unset, so a binary line is what it always was).
    pydantic-core writes it, not orjson: a record may hold a NaN, which orjson would write as
    ``null`` (a request's records, ``CaptureBatch``, cannot, and orjson writes those).
    """
    fields = {k: v for k, v in record.__dict__.items() if v is not None or k not in OUTPUT_FIELDS}
    return LINE_HEAD + to_json(fields).decode()[1:] + "\n"


def record_time(record: CaptureRecord | FeedbackRecord) -> datetime:
    return record.received_at if isinstance(record, FeedbackRecord) else record.captured_at
