"""Train and serve on a real public dataset that is not in this repo: the raw Palmer penguins
table (mixed types, "NA" tokens, a "." in the target, identifier and constant columns)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import palmerpenguins
import pytest

from lambdaserve.local.artifact_store import LocalArtifactStore
from lambdaserve.serving.app import create_app
from lambdaserve.serving.background_server import serve_in_thread
from lambdaserve.serving.model_loader import LoadedModel

pytestmark = pytest.mark.e2e
RAW = Path(palmerpenguins.__file__).parent / "data" / "penguins-raw.csv"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lambdaserve.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
        check=False,
    )


def test_raw_penguins_train_serve_predict(tmp_path: Path) -> None:
    store = tmp_path / "store"
    trained = _cli(
        "train",
        "--data",
        str(RAW),
        "--target",
        "Sex",
        "--name",
        "penguins",
        "--store",
        str(store),
        "--json",
    )
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout)
    actions = {(c["column"], c["action"]) for c in summary["coercions"]}
    assert ("Sex", "dropped_rows_missing_target") in actions
    assert ("Individual ID", "dropped_identifier") in actions
    assert {"Region", "Stage"} <= set(summary["dropped_columns"])
    assert summary["metrics"]["roc_auc"] > 0.85

    # Rows 4 and 272 of the raw file have no measurements at all; training never saw that (their
    # target is missing too), so the API refuses them by row and column instead of guessing.
    with RAW.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows, header = list(reader), reader.fieldnames
    assert header is not None
    model = LoadedModel.from_bundle(LocalArtifactStore(store).open("penguins"))
    with serve_in_thread(create_app(model)) as url:
        refused = _cli("predict", "--data", str(RAW), "--url", url)
        assert refused.returncode == 1
        assert "row 4, column 'Culmen Length (mm)': null is not allowed" in refused.stderr
        assert "Traceback" not in refused.stderr

        measured = [r for r in rows if r["Culmen Length (mm)"] != "NA"]
        clean_csv = tmp_path / "measured.csv"
        with clean_csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=header)
            writer.writeheader()
            writer.writerows(measured)
        output = tmp_path / "predictions.jsonl"
        scored = _cli("predict", "--data", str(clean_csv), "--url", url, "--output", str(output))
        assert scored.returncode == 0, scored.stderr
    predictions = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(predictions) == len(measured) == 342
    labelled = [
        (p["label"], r["Sex"])
        for p, r in zip(predictions, measured, strict=True)
        if r["Sex"] in ("MALE", "FEMALE")
    ]
    accuracy = sum(label == sex for label, sex in labelled) / len(labelled)
    assert accuracy > 0.85


def _measured(tmp_path: Path) -> Path:
    """The raw table without the two rows that have no measurements at all."""
    with RAW.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows, header = list(reader), reader.fieldnames
    assert header is not None
    path = tmp_path / "measured.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(r for r in rows if r["Culmen Length (mm)"] != "NA")
    return path


def _train(store: Path, name: str, target: str, *extra: str) -> dict[str, object]:
    trained = _cli(
        "train", "--data", str(RAW), "--target", target, "--name", name, "--store", str(store),
        "--json", *extra,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    summary: dict[str, object] = json.loads(trained.stdout)
    return summary


def test_raw_penguins_species_is_a_multiclass_model_end_to_end(tmp_path: Path) -> None:
    store = tmp_path / "store"
    summary = _train(store, "species", "Species")  # --task auto: three text classes
    assert summary["task"] == "multiclass_classification"
    assert len(summary["classes"]) == 3  # type: ignore[arg-type]
    metrics = summary["metrics"]
    assert isinstance(metrics, dict) and metrics["accuracy"] > 0.9 and metrics["macro_f1"] > 0.9
    assert summary["onnx"]["status"] == "ok"  # type: ignore[index]
    model = LoadedModel.from_bundle(LocalArtifactStore(store).open("species"))
    output = tmp_path / "species.jsonl"
    with serve_in_thread(create_app(model)) as url:
        scored = _cli("predict", "--data", str(_measured(tmp_path)), "--url", url, "--output",
                      str(output))  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    predictions = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(predictions) == 342
    assert all(set(p["probabilities"]) == set(summary["classes"]) for p in predictions)  # type: ignore[arg-type]
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-4 for p in predictions)


def test_raw_penguins_body_mass_is_a_regression_model_end_to_end(tmp_path: Path) -> None:
    store = tmp_path / "store"
    summary = _train(store, "mass", "Body Mass (g)", "--estimator", "ridge")
    assert summary["task"] == "regression" and summary["classes"] == []
    span = summary["target_range"]
    assert isinstance(span, dict) and span["dtype"] == "int64"
    assert 2700 <= span["minimum"] < span["maximum"] <= 6300
    metrics = summary["metrics"]
    assert isinstance(metrics, dict) and metrics["r2"] > 0.7 and metrics["mae"] < 400
    model = LoadedModel.from_bundle(LocalArtifactStore(store).open("mass"))
    output = tmp_path / "mass.jsonl"
    with serve_in_thread(create_app(model)) as url:
        scored = _cli("predict", "--data", str(_measured(tmp_path)), "--url", url, "--output",
                      str(output))  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    assert "predicted" in scored.stdout
    predictions = [json.loads(line)["prediction"] for line in output.read_text().splitlines()]
    assert len(predictions) == 342 and 2000 < min(predictions) < max(predictions) < 7000
