"""The SageMaker source archive holds what the job needs, and runs under the script-mode contract
from nothing but its own contents (plus installed requirements)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from lambdaserve.datasets import churn
from lambdaserve.kernel.bundle import verify_bundle
from layers.lock_export import TRAINING_REQUIREMENTS
from layers.pins import read_requirements
from training.source_bundle import OFFLINE_HEADER, build

pytestmark = pytest.mark.infra


def test_archive_contents_and_reproducibility(tmp_path: Path) -> None:
    first = build(tmp_path / "a")
    second = build(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        names = set(tar.getnames())
        requirements = tar.extractfile("requirements.txt").read().decode()  # type: ignore[union-attr]
    assert {
        "train.py",
        "requirements.txt",
        "lambdaserve/training/job.py",
        "lambdaserve/kernel/bundle.py",
    } <= names
    assert not any(
        n.startswith(("lambdaserve/cli", "lambdaserve/serving", "lambdaserve/aws")) for n in names
    )
    assert "scikit-learn==" in requirements and "skl2onnx==" in requirements
    # Offline (the job runs with network isolation), then the exact pins with hashes.
    assert requirements == OFFLINE_HEADER + TRAINING_REQUIREMENTS.read_text()
    assert requirements.startswith("--no-index\n--find-links wheels\n")
    # A cp312 x86_64 wheel for every pin, in the archive's own wheels/.
    wheels = {n.removeprefix("wheels/") for n in names if n.startswith("wheels/")}
    for pin in read_requirements(TRAINING_REQUIREMENTS):
        distribution = pin.name.replace("-", "_").lower()
        (wheel,) = [w for w in wheels if w.lower().startswith(f"{distribution}-{pin.version}-")]
        tags = wheel.removesuffix(".whl").split("-")[-3:]
        assert tags[0] in {"py3", "py2.py3", "cp312"} or "abi3" in tags[1], wheel
        assert tags[2] == "any" or "x86_64" in tags[2], wheel


def test_train_py_runs_from_the_extracted_archive(tmp_path: Path) -> None:
    with tarfile.open(build(tmp_path / "src")) as tar:
        tar.extractall(tmp_path / "code", filter="data")
    channel = tmp_path / "input" / "data" / "train"
    channel.mkdir(parents=True)
    churn.write_churn_csv(channel / "train.csv", 800, seed=5)
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        "PYTHONPATH": str(tmp_path / "code"),  # our code from the archive only
        "SM_CHANNEL_TRAIN": str(channel),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DIR": str(tmp_path / "output"),
        "SM_OUTPUT_DATA_DIR": str(tmp_path / "output" / "data"),
        "SM_HPS": json.dumps(
            {
                "target": churn.TARGET,
                "drop": [churn.ID_COLUMN],
                "cv_folds": 2,
                "n_estimators": 20,
                "model_name": "churn",
            }
        ),
    }
    where = subprocess.run(
        [sys.executable, "-c", "import lambdaserve.training.job as j; print(j.__file__)"],
        cwd=tmp_path / "code",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(tmp_path / "code"))
    result = subprocess.run(
        [sys.executable, "train.py"],
        cwd=tmp_path / "code",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert verify_bundle(tmp_path / "model").manifest.name == "churn"
