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
