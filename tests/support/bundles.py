"""Trained bundles for tests: ``train_bundle`` runs the SageMaker-contract job on a frame, and
``trained_once`` keeps one per pytest run, however many xdist workers ask for it.

The first worker to ask trains the bundle under a lock in the run's shared temporary directory
(the parent of every worker's base temp, as pytest-xdist documents); the others wait on the
lock and open the same directory, verified. Session fixtures call ``trained_once``; tests that
tamper with a bundle work on a copy (``bundle_copy``), never on the shared one.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from lambdaserve.kernel.bundle import VerifiedBundle, verify_bundle
from lambdaserve.training.hyperparameters import TrainingConfig
from lambdaserve.training.job import train
from lambdaserve.training.sagemaker_env import SageMakerPaths


def run_temp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory every worker of this run shares (one process: its own base temp)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def made_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], Path]
) -> Path:
    """``make(root)`` the first time ``name`` is asked for in this run (by any worker, under a
    lock); afterwards the path it answered."""
    shared = run_temp_root(tmp_path_factory)
    marker = shared / f"{name}.path"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return Path(marker.read_text())
        root = shared / name
        root.mkdir()
        made = make(root)
        marker.write_text(str(made))
        return made


def trained_once(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    train: Callable[[Path], VerifiedBundle],
) -> VerifiedBundle:
    """``train(root)`` the first time ``name`` is asked for in this run; afterwards the same
    bundle, verified again (every hash) before it is handed out."""
    path = made_once(tmp_path_factory, f"trained-{name}", lambda root: train(root).path)
    return verify_bundle(path)


def train_bundle(root: Path, frame: pd.DataFrame, **hyperparameters: object) -> VerifiedBundle:
    """Train through the same job SageMaker runs, into ``root``; return the sealed bundle."""
    channel = root / "input" / "data" / "train"
    channel.mkdir(parents=True)
    frame.to_csv(channel / "data.csv", index=False)
    paths = SageMakerPaths(
        train_channel=channel,
        model_dir=root / "model",
        output_data_dir=root / "output" / "data",
        output_dir=root / "output",
    )
    config = TrainingConfig.model_validate({"cv_folds": 3, "n_estimators": 30, **hyperparameters})
    return train(paths, config).bundle


def sagemaker_environment(
    root: Path, frame: pd.DataFrame, hyperparameters: dict[str, object]
) -> dict[str, str]:
    """An ``/opt/ml``-shaped ``root`` holding ``frame`` as the train channel, and the ``SM_*``
    environment SageMaker sets for it (hyperparameters as ``SM_HPS``), for ``job.main``."""
    channel = root / "input" / "data" / "train"
    channel.mkdir(parents=True)
    frame.to_csv(channel / "train.csv", index=False)
    return {
        "SM_CHANNEL_TRAIN": str(channel),
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DIR": str(root / "output"),
        "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
        "SM_HPS": json.dumps(hyperparameters),
    }
