"""Captures partitioned by model: ``captures/model=<name>/dt=.../hour=HH/``, written per record
by the local capture log, read per model or for every model."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lambdaserve.kernel.capture import (
    FeedbackRecord,
    is_model_name,
    model_prefix,
    partition,
)
from lambdaserve.kernel.capture_lines import CaptureBatch
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.local.capture_log import (
    CaptureLog,
    captures_dir,
    read_captures,
    read_feedback,
    read_stream,
)
from tests.support.capture_records import HOUR, NOON, PREDICTION_ID, record

pytestmark = pytest.mark.unit


def outcome(model: str, at: datetime = NOON) -> FeedbackRecord:
    return FeedbackRecord(received_at=at, prediction_id=PREDICTION_ID, model_name=model, label=1)


def trees(root: Path) -> list[str]:
    return sorted(p.relative_to(root).parent.as_posix() for p in root.rglob("*.jsonl"))


def test_the_partition_helpers_spell_one_tree_per_model() -> None:
    assert model_prefix("churn") == "captures/model=churn/"
    assert partition(NOON + 5 * HOUR, "churn") == "captures/model=churn/dt=2026-11-27/hour=17"
    assert partition(NOON, "fraud.v2").startswith(model_prefix("fraud.v2"))
    assert not partition(NOON, "churn2").startswith(model_prefix("churn"))
    assert is_model_name("churn-2_x.y") and is_model_name("A" * 64)
    for bad in ("", "../etc", "a/b", "-lead", "A" * 65, "churn\n", "model=x"):
        assert not is_model_name(bad), bad


def test_two_models_records_land_in_their_own_trees(tmp_path: Path) -> None:
    log = CaptureLog(tmp_path)
    shared = record("churn", "shared")
    log.write(CaptureBatch(shared, [("c1", {"amount": 1.0}, {"probability": 0.5}, ())]))
    log.write([record("fraud", "f1"), record("churn", "c2", NOON + HOUR)])  # mixed: split
    log.write([record("fraud", "f2", NOON + timedelta(minutes=5))])
    log.write_feedback([outcome("fraud")])
    log.close()

    assert trees(tmp_path) == [
        "captures/model=churn/dt=2026-11-27/hour=12",
        "captures/model=churn/dt=2026-11-27/hour=13",
        "captures/model=fraud/dt=2026-11-27/hour=12",
    ]
    fraud = tmp_path / "captures/model=fraud/dt=2026-11-27/hour=12"
    (part,) = fraud.glob("*.jsonl")
    assert part.read_text().count("\n") == 3, "one part file per model and hour, appended"
    assert all('"model_name":"fraud"' in line for line in part.read_text().splitlines())


def test_one_model_reads_only_its_tree_and_none_reads_every_tree(tmp_path: Path) -> None:
    log = CaptureLog(tmp_path)
    log.write([record("fraud", "f-noon")])
    log.write([record("churn", "c-noon", NOON + timedelta(minutes=30))])
    log.write([record("churn", "c-one", NOON + HOUR)])
    log.write([record("fraud", "f-one", NOON + HOUR)])
    log.write_feedback([outcome("churn", NOON + timedelta(minutes=10))])
    log.close()
    window = (NOON, NOON + 2 * HOUR)

    churn = [r.prediction_id for r in read_captures(tmp_path, *window, model="churn")]
    assert churn == ["c-noon", "c-one"]
    assert [r.prediction_id for r in read_captures(tmp_path, *window, model="fraud")] == [
        "f-noon",
        "f-one",
    ]
    everything = [r.prediction_id for r in read_captures(tmp_path, *window)]
    assert everything == ["c-noon", "f-noon", "c-one", "f-one"], "by hour, then model"
    assert [f.model_name for f in read_feedback(tmp_path, *window)] == ["churn"]
    assert list(read_feedback(tmp_path, *window, model="fraud")) == []
    assert list(read_stream(tmp_path, *window, model="absent")) == []
    # The captures directory itself is read the same way as the store root.
    assert [r.prediction_id for r in read_captures(tmp_path / "captures", *window)] == everything
    assert captures_dir(tmp_path) == captures_dir(tmp_path / "captures") == tmp_path / "captures"


def test_invalid_model_names_are_neither_read_nor_written(tmp_path: Path) -> None:
    with pytest.raises(LambdaserveError, match=r"'\.\./x' is not a model name"):
        list(read_captures(tmp_path, NOON, NOON + HOUR, model="../x"))
    log = CaptureLog(tmp_path / "store")
    with pytest.raises(LambdaserveError, match="invalid model"):
        log.write([record("../outside", "x")])
    log.close()
    assert list(tmp_path.rglob("*.jsonl")) == []


def test_an_old_layout_partition_is_not_read(tmp_path: Path) -> None:
    """No compatibility with ``captures/dt=...`` (one tree for every model)."""
    old = tmp_path / "captures/dt=2026-11-27/hour=12"
    old.mkdir(parents=True)
    (old / "part-1.jsonl").write_text("not even a capture line\n")
    assert list(read_stream(tmp_path, NOON, NOON + HOUR)) == []
