"""Capture lines at speed, unchanged: the reader's fast path (pydantic-core validating the
writer's lines from their bytes) gives the records the general path (``json`` + pydantic) gives,
down to each value's type, and refuses what it refuses with the same error; the batch writer
(orjson) writes the bytes pydantic-core wrote."""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic_core import to_json

from lambdaserve.kernel import capture
from lambdaserve.kernel.capture import (
    LINE_HEAD,
    OUTPUT_FIELDS,
    CaptureRecord,
    FeedbackRecord,
    parse_stream_line,
    stream_line,
)
from lambdaserve.kernel.capture_lines import CaptureBatch, CaptureRow
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.local.capture_log import read_captures
from tests.support.capture_records import NOON, PREDICTION_ID

pytestmark = pytest.mark.unit

AT = NOON + timedelta(microseconds=123456)
TEXTS = [
    *("", "plain", "é à ü", "日本語", "😀 emoji", 'quote " back \\ slash', "line\nbreak\ttab"),
    *("\x00\x1f\x7f", "\u2028\u2029", "</script>"),
]
BIG_INTS = [0, -1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1]
FLOATS = [
    *(0.0, -0.0, 0.1, 1 / 3, 1.0, 100.0, 1e16, 1e-7, -123456.789),
    *(5e-324, 2.2250738585072014e-308, 1.7976931348623157e308),
]


def _random_floats(count: int, seed: int) -> list[float]:
    """Doubles of every magnitude (random bit patterns, the finite ones)."""
    rng = random.Random(seed)
    out: list[float] = []
    while len(out) < count:
        (value,) = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))
        if value == value and abs(value) != float("inf"):
            out.append(value)
    return out


def _features(i: int) -> dict[str, Any]:
    floats = _random_floats(4, seed=i)
    return {
        "amount": FLOATS[i % len(FLOATS)],
        "ratio": floats[0],
        "tiny": floats[1],
        "count": BIG_INTS[i % len(BIG_INTS)],
        "text": TEXTS[i % len(TEXTS)],
        "flag": i % 2 == 0,
        "missing": None,
        "whole": float(i),
        TEXTS[i % len(TEXTS)] or "key": floats[2],  # unicode and escapes in keys too
    }


def _shared(**changes: Any) -> CaptureRecord:
    values: dict[str, Any] = {
        "captured_at": AT,
        "prediction_id": "",
        "model_name": "churn",
        "model_version": "3",
        "bundle_sha256": "ab" * 32,
        "function_version": "7",
        "features": {},
        "latency_ms": 1.234,
    }
    return CaptureRecord.model_construct(**(values | changes))


def _rows() -> list[tuple[CaptureRecord, CaptureRow]]:
    """Rows of every task, under varied shared fields."""
    binary = [{"probability": p, "label": p >= 0.5} for p in (0.0, 0.25, 1.0)]
    binary += [{"probability": 0.75, "label": label} for label in (1, "yes", True)]
    multiclass = [
        {"label": "b", "probabilities": {"a": 0.25, "b": 0.75}},
        {"label": 2, "probabilities": {"0": 0.0, "1": 1e-9, "2": 1.0}},
        {"label": False, "probabilities": {"false": 0.5, "true": 0.5}},
    ]
    regression = [{"prediction": p} for p in (-1.5, 0.0, 1e300, 42.0)]
    shared = [
        _shared(),
        _shared(captured_at=NOON, function_version=None),
        _shared(captured_at=AT.astimezone(timezone(timedelta(hours=2))), latency_ms=0.0),
        _shared(captured_at=datetime(2026, 11, 27, 12, 0, 0, 1), model_version="v2.0-ünï"),
    ]
    flags = [(), ("unseen:plan",), ("unseen:plan", "unseen:région")]
    return [
        (shared[i % len(shared)], (f"ID{i}", _features(i), outputs, flags[i % len(flags)]))
        for i, outputs in enumerate(binary + multiclass + regression)
    ]


def _feedback() -> list[FeedbackRecord]:
    return [
        FeedbackRecord(received_at=at, prediction_id=PREDICTION_ID, model_name="churn", **outcome)
        for at, outcome in [
            (AT, {"label": 1}),
            (NOON, {"label": "yes"}),
            (NOON.astimezone(timezone(timedelta(hours=-5))), {"label": True}),
            (AT, {"value": 12.5}),
            (AT, {"value": 5e-324}),
        ]
    ]


def writer_lines() -> list[str]:
    """Every kind of line the writers make, each from ``CaptureBatch`` and from ``stream_line``."""
    lines = []
    for shared, row in _rows():
        batch = CaptureBatch(shared, [row])
        lines += [batch.text(), stream_line(batch[0])]
    return lines + [stream_line(record) for record in _feedback()]


def _same(ours: object, theirs: object) -> bool:
    """The same records, down to every value's type and spelling (``1 == 1.0 == True``; a NaN
    is not equal to itself) and the fields set."""
    fields = getattr(ours, "model_fields_set", None), getattr(theirs, "model_fields_set", None)
    return type(ours) is type(theirs) and repr(ours) == repr(theirs) and fields[0] == fields[1]


def _outcome(parse: Any, line: str | bytes) -> object:
    try:
        return parse(line)
    except ValueError as exc:
        return type(exc), str(exc)


def _general_path_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(line: str | bytes) -> object:
        raise AssertionError(f"the general path parsed a writer's line: {line!r}")

    monkeypatch.setattr(capture, "parse_decoded_line", refuse)


# --- reading ----------------------------------------------------------------------------------


def test_the_writers_lines_read_back_as_their_records() -> None:
    for shared, row in _rows():
        batch = CaptureBatch(shared, [row])
        (expected,) = list(batch)
        for line in (batch.text(), stream_line(expected)):
            assert parse_stream_line(line) == expected
            assert parse_stream_line(line.encode()) == expected
    for record in _feedback():
        assert parse_stream_line(stream_line(record)) == record


def test_the_fast_path_reads_every_writer_line_as_the_general_path_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = writer_lines()
    general = [capture.parse_decoded_line(line.encode()) for line in lines]
    _general_path_refused(monkeypatch)  # so each line below is read by the fast path
    for line, theirs in zip(lines, general, strict=True):
        for form in (line, line.encode(), line.encode().rstrip(b"\n")):
            assert _same(parse_stream_line(form), theirs), line


def _hand_written() -> list[str | bytes]:
    """Lines no writer of ours makes: other spellings, lax values, and invalid lines."""
    fields = (
        '"captured_at":"2026-11-27T12:00:00+00:00","prediction_id":"X","model_name":"m",'
        '"model_version":"1","bundle_sha256":"s","latency_ms":1'
    )
    timestamp = fields.replace('"2026-11-27T12:00:00+00:00"', "1800000000")
    feedback = (
        '"schema_version":1,"kind":"feedback","received_at":"2026-11-27T12:00:00Z",'
        f'"prediction_id":"{PREDICTION_ID}","model_name":"m"'
    )
    bodies = [
        f'{fields},"features":{{"a":1,"b":null}}}}',  # json.dumps' "+00:00", int latency
        f'{fields},"features":{{"a":NaN,"b":Infinity,"c":-Infinity,"d":1e400}}}}',
        f'{fields},"features":{{"a":123456789012345678901234567890}}}}',
        f'{fields},"features":{{"a":"\\ud800"}}}}',  # a lone surrogate
        f'{fields},"features":{{"a":"\ud800"}}}}',  # one unescaped (str lines only)
        f'{fields},"features":{{"a":"\\ud83d\\ude00","\\u0062":1}}}}',
        f'{fields},"probability":"0.5","label":1.0,"features":{{}}}}',  # lax values
        f'{fields},"features":{{}},"flags":null}}',
        f'{fields},"features":{{"a":[1]}}}}',
        f'{fields},"features":{{}},"surprise":1}}',
        f'{fields},"features":{{}},"kind":"feedback"}}',
        f'{fields},"features":{{}},"lambdaserve_capture":2}}',
        f'{fields},"features":{{"a":1,"a":2.5}},"model_name":"n"}}',  # repeated keys
        f'{timestamp},"features":{{}}}}',
        f'{fields.replace("+00:00", "")},"features":{{}}}}',  # naive
        f'{fields},"features":{{}}}} trailing',
        f'{fields},"features":{{"a":"tab\there"}}}}',  # a raw control character
        f'"schema_version":2,{fields},"features":{{}}}}',
        f'{feedback},"label":1}}',
        f'{feedback},"label":1,"value":2.5}}',
        f'{feedback},"label":null}}',
        f'{feedback},"label":1,"kind":"other"}}',
        f'{feedback.replace(PREDICTION_ID, "not-an-id")},"label":1}}',
    ]
    lines: list[str | bytes] = [LINE_HEAD + body for body in bodies]
    lines += [LINE_HEAD.replace(":1,", ": 1, ") + body for body in bodies[:2]]  # spaced out
    lines += [b"\xef\xbb\xbf" + LINE_HEAD.encode() + bodies[0].encode()]  # a BOM
    lines += [LINE_HEAD.encode() + b'"model_name":"\xff"}']  # not UTF-8
    return [*lines, "not json", "[1]", "null", "", "{}", '{"lambdaserve_capture":1}', "{\n"]


def test_any_other_line_reads_or_fails_as_it_always_did() -> None:
    for line in _hand_written():
        for form in (line, line.encode(errors="surrogatepass") if isinstance(line, str) else line):
            ours, theirs = (
                _outcome(parse_stream_line, form),
                _outcome(capture.parse_decoded_line, form),
            )
            assert _same(ours, theirs), (form, ours, theirs)


def test_the_local_reader_still_names_the_line_it_cannot_read(tmp_path: Path) -> None:
    part = tmp_path / "captures/model=churn/dt=2026-11-27/hour=12/part-1.jsonl"
    part.parent.mkdir(parents=True)
    good = CaptureBatch(_shared(captured_at=NOON), [_rows()[0][1]]).text()
    broken = good.replace('"bundle_sha256":"', '"bundle_sha256":7,"x":"')
    part.write_text(good + broken)
    with pytest.raises(LambdaserveError, match=r"part-1\.jsonl:2 is not a capture record \(Valid"):
        list(read_captures(tmp_path, NOON, NOON + timedelta(hours=1)))


# --- writing ----------------------------------------------------------------------------------


def _pydantic_core_text(shared: CaptureRecord, rows: Sequence[CaptureRow]) -> str:
    """What ``CaptureBatch.text()`` wrote before orjson: pydantic-core's ``to_json``."""
    own = {"prediction_id", "features", *OUTPUT_FIELDS, "flags"}
    common = {k: v for k, v in shared.__dict__.items() if k not in own}
    head = LINE_HEAD + to_json(common).decode()[1:-1] + ","
    lines = []
    for prediction_id, features, outputs, flags in rows:
        fields = {"prediction_id": prediction_id, "features": features, **outputs, "flags": flags}
        lines.append(head + to_json(fields).decode()[1:] + "\n")
    return "".join(lines)


def test_a_batch_writes_the_bytes_pydantic_core_wrote() -> None:
    rows = _rows()
    for shared in {id(s): s for s, _ in rows}.values():
        own = [row for s, row in rows if s is shared]
        assert CaptureBatch(shared, own).text() == _pydantic_core_text(shared, own)


def test_numbers_of_every_magnitude_are_written_as_pydantic_core_writes_them() -> None:
    floats = _random_floats(20_000, seed=7) + FLOATS + [float(i) for i in range(-50, 50)]
    ints = BIG_INTS + [random.Random(3).randint(-(2**63), 2**64 - 1) for _ in range(1000)]
    values: Sequence[float | int] = floats + ints
    rows: list[CaptureRow] = [
        (
            "ID",
            {f"v{j}": value for j, value in enumerate(values[i : i + 50])},
            {"prediction": 1.0},
            (),
        )
        for i in range(0, len(values), 50)
    ]
    assert CaptureBatch(_shared(), rows).text() == _pydantic_core_text(_shared(), rows)


def test_what_orjson_refuses_is_still_written() -> None:
    """An int beyond 64 bits (JSON allows it; a request's int feature can be one)."""
    row: CaptureRow = ("ID", {"huge": 2**64, "negative": -(2**63) - 1}, {"prediction": 1.0}, ())
    text = CaptureBatch(_shared(), [row]).text()
    assert text == _pydantic_core_text(_shared(), [row])
    assert parse_stream_line(text).features == {"huge": 2**64, "negative": -(2**63) - 1}


def test_capture_times_keep_their_spelling() -> None:
    """UTC ends in ``Z``, microseconds only when there are any, other offsets as they are."""
    spellings = [
        (NOON, "2026-11-27T12:00:00Z"),
        (AT, "2026-11-27T12:00:00.123456Z"),
        (NOON + timedelta(microseconds=1), "2026-11-27T12:00:00.000001Z"),
        (
            AT.astimezone(timezone(timedelta(hours=5, minutes=30))),
            "2026-11-27T17:30:00.123456+05:30",
        ),
        (datetime(2026, 11, 27, 12, 0), "2026-11-27T12:00:00"),
    ]
    for moment, spelled in spellings:
        line = CaptureBatch(_shared(captured_at=moment), [_rows()[0][1]]).text()
        assert json.loads(line)["captured_at"] == spelled == to_json(moment).decode().strip('"')
        assert parse_stream_line(line).captured_at == moment
        assert line.startswith(LINE_HEAD + '"schema_version":1,"captured_at":')
