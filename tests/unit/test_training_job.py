"""The training job under the SageMaker contract: dirty data is coerced and counted or refused
with a reason in the failure file, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lambdaserve.datasets import churn
from lambdaserve.kernel.bundle import verify_bundle
from lambdaserve.kernel.reference import ReferenceProfile
from lambdaserve.training.job import main
from tests.support.bundles import sagemaker_environment

pytestmark = pytest.mark.unit


def _run(
    tmp_path: Path, frame: pd.DataFrame, capsys: pytest.CaptureFixture[str], **hps: object
) -> tuple[int, Path, str]:
    env = sagemaker_environment(tmp_path, frame, {"cv_folds": 2, "n_estimators": 10, **hps})
    code = main([], env)
    captured = capsys.readouterr()
    return code, tmp_path, captured.out + captured.err


def _failure(root: Path) -> str:
    return (root / "output" / "failure").read_text()


def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "x": x,
            "z": rng.normal(size=n),
            "colour": rng.choice(["red", "blue"], n),
            "y": (x + rng.normal(scale=0.5, size=n) > 0.6).astype(int),
        }
    )


def test_dirty_churn_data_trains_and_counts_coercions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = churn.generate_churn(1500, seed=3)
    code, root, log = _run(
        tmp_path,
        frame,
        capsys,
        target=churn.TARGET,
        drop=[churn.ID_COLUMN],
        model_name="churn",
        model_version="5",
    )
    assert code == 0, log
    bundle = verify_bundle(root / "model")
    manifest = bundle.manifest
    assert (manifest.name, manifest.version) == ("churn", "5")
    assert manifest.classes == (0, 1) and manifest.positive_class == 1
    blank = [c for c in manifest.data.coercions if c.action == "blank_to_missing"]
    assert [c.column for c in blank] == ["total_charges"]
    assert blank[0].count == int((frame["total_charges"].astype(str).str.strip() == "").sum())
    spec = {s.name: s for s in manifest.features.features}
    assert spec["total_charges"].kind == "numeric" and spec["total_charges"].nullable
    assert spec["contract"].categories == tuple(sorted(churn.CONTRACTS))
    assert set(manifest.metrics) == {
        "roc_auc",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "log_loss",
        "brier",
    }
    assert manifest.metrics["roc_auc"] > 0.7
    assert manifest.data.fingerprint and manifest.data.rows == 1500
    assert "scikit-learn" in manifest.library_versions
    reference = ReferenceProfile.model_validate_json(
        (root / "model" / "reference.json").read_text()
    )
    assert reference.features["tenure_months"].kind == "numeric"
    assert reference.score is not None and reference.predicted_classes is None
    assert sum(reference.score.counts) == manifest.data.holdout_rows
    assert "predicted_classes" not in json.loads((root / "model" / "reference.json").read_text())
    assert manifest.task == "binary_classification" and manifest.target_range is None
    assert manifest.data.positive_rate == pytest.approx(frame[churn.TARGET].mean())
    metrics = json.loads((root / "output" / "data" / "metrics.json").read_text())
    assert metrics["bundle_digest"] == bundle.digest
    assert metrics["task"] == "binary_classification"
    assert not (root / "output" / "failure").exists()


def test_missing_target_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, root, log = _run(tmp_path, _frame(), capsys, target="churn")
    assert code == 1
    assert "target column 'churn' not found; columns are: x, z, colour, y" in _failure(root)
    assert "Traceback" not in log


def test_target_not_binary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = _frame()
    frame["y"] = np.arange(len(frame)) % 3
    code, root, log = _run(tmp_path, frame, capsys, target="y", task="binary")
    assert code == 1
    assert "must be binary: found 3 distinct values" in _failure(root)
    assert "Traceback" not in log
    assert not (root / "model").exists()


def test_three_classes_train_as_multiclass_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _frame()
    frame["y"] = np.digitize(frame["x"], [-0.4, 0.4])
    code, root, log = _run(tmp_path, frame, capsys, target="y", onnx=False)
    assert code == 0, log
    manifest = verify_bundle(root / "model").manifest
    assert manifest.task == "multiclass_classification"
    assert manifest.classes == (0, 1, 2) and manifest.positive_class is None
    assert manifest.data.positive_rate is None
    metrics = json.loads((root / "output" / "data" / "metrics.json").read_text())
    assert metrics["task"] == "multiclass_classification"
    assert set(metrics["metrics"]) == set(metrics["cv_metrics"]) >= {"accuracy", "macro_f1"}


def test_single_class_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = _frame()
    frame["y"] = 1
    code, root, _ = _run(tmp_path, frame, capsys, target="y")
    assert code == 1
    assert "single class" in _failure(root)


def test_declared_numeric_column_full_of_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _frame()
    frame["z"] = "unknown"
    code, root, _ = _run(tmp_path, frame, capsys, target="y", numeric_columns="z")
    assert code == 1
    assert (
        "column 'z' is declared numeric but 200 of 200 present values are not numbers"
        in _failure(root)
    )


def test_blanks_and_unparseable_values_are_counted_and_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    frame = _frame()
    frame["z"] = frame["z"].round(3).astype(str)
    frame.loc[:9, "z"] = " "
    frame.loc[10:12, "z"] = "oops"  # 3 of 190 present values do not parse: still numeric
    frame["constant"] = 4
    frame["empty"] = ""
    code, root, log = _run(tmp_path, frame, capsys, target="y", onnx=False)
    assert code == 0, log
    manifest = verify_bundle(root / "model").manifest
    counts = {(c.column, c.action): c.count for c in manifest.data.coercions}
    assert counts[("z", "blank_to_missing")] == 10
    assert counts[("z", "unparseable_to_missing")] == 3
    assert counts[("constant", "dropped_constant")] == 1
    assert counts[("empty", "dropped_constant")] == 1
    assert set(manifest.data.dropped_columns) == {"constant", "empty"}
    assert manifest.onnx.status == "disabled"
    assert "z: 10 blank strings became missing values" in caplog.text


def test_missing_value_tokens_are_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _frame()
    frame["z"] = frame["z"].round(3).astype(str)
    frame.loc[:39, "z"] = "NA"  # 20%: without token handling this column would turn categorical
    frame.loc[40:44, "colour"] = "?"
    code, root, log = _run(tmp_path, frame, capsys, target="y", onnx=False)
    assert code == 0, log
    manifest = verify_bundle(root / "model").manifest
    counts = {(c.column, c.action): c.count for c in manifest.data.coercions}
    assert counts[("z", "missing_token_to_missing")] == 40
    assert counts[("colour", "missing_token_to_missing")] == 5
    spec = {s.name: s for s in manifest.features.features}
    assert spec["z"].kind == "numeric" and spec["z"].missing_fraction == pytest.approx(0.2)
    assert spec["colour"].categories == ("blue", "red")


def test_identifier_column_is_dropped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = _frame()
    frame["customer"] = [f"C{i:05d}" for i in range(len(frame))]
    code, root, _ = _run(tmp_path, frame, capsys, target="y", onnx=False)
    assert code == 0
    assert "customer" in verify_bundle(root / "model").manifest.data.dropped_columns


def test_unknown_drop_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, root, _ = _run(tmp_path, _frame(), capsys, target="y", drop=["nope"])
    assert code == 1
    assert "cannot drop columns that do not exist: ['nope']" in _failure(root)


def test_too_little_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, root, _ = _run(tmp_path, _frame(n=10), capsys, target="y")
    assert code == 1
    assert "too little data" in _failure(root)


def test_empty_channel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    env = {
        "SM_CHANNEL_TRAIN": str(tmp_path / "in"),
        "SM_OUTPUT_DIR": str(tmp_path / "output"),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_HPS": '{"target": "y"}',
    }
    assert main([], env) == 1
    assert "no CSV or Parquet files" in (tmp_path / "output" / "failure").read_text()


def test_parquet_input_and_string_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _frame()
    frame["y"] = np.where(frame["y"] == 1, "yes", "no")
    channel = tmp_path / "input"
    channel.mkdir()
    frame.to_parquet(channel / "part-0.parquet")
    env = {
        "SM_CHANNEL_TRAIN": str(channel),
        "SM_OUTPUT_DIR": str(tmp_path / "output"),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_HPS": json.dumps({"target": "y", "cv_folds": 2, "n_estimators": 10}),
    }
    assert main([], env) == 0
    manifest = verify_bundle(tmp_path / "model").manifest
    assert manifest.positive_class == "yes" and manifest.classes == ("no", "yes")
