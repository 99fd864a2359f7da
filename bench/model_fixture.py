"""The benchmark model: a synthetic binary dataset, and bundles trained through our own job.

20 numeric and 3 categorical columns, about 3% of every value missing, a target that depends on
linear terms, an interaction, a non-linearity and the categories. Bundles are trained by
``lambdaserve.training.job.train`` exactly as SageMaker would run it, so they carry a real
manifest, reference profile, skops model and (when it converts and passes parity) ``model.onnx``.
``train_bundle`` also takes another table's target, task and dropped columns (``bench.task_latency``
trains the churn table's three tasks), and ``schema_rows`` turns any table into request rows.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.schema import FeatureSchema, FeatureSpec
from lambdaserve.training.hyperparameters import EstimatorName, TaskChoice, TrainingConfig
from lambdaserve.training.job import train
from lambdaserve.training.sagemaker_env import SageMakerPaths

TARGET = "label"
N_NUMERIC = 20
NUMERIC_COLUMNS = tuple(f"x{i:02d}" for i in range(N_NUMERIC))
CATEGORIES: dict[str, tuple[str, ...]] = {
    "plan": ("basic", "plus", "pro", "enterprise"),
    "region": ("eu-west", "eu-central", "us-east", "us-west", "ap-south", "sa-east"),
    "channel": tuple(f"ch{i}" for i in range(10)),
}
MISSING_RATE = 0.03
TRAIN_ROWS = 5000


def synthetic_frame(rows: int, seed: int) -> pd.DataFrame:
    """A reproducible frame of ``rows`` rows (features with NaN/None holes, plus ``label``)."""
    shape = np.random.default_rng(0)  # the same columns for every seed: seeds vary rows only
    scales = shape.uniform(0.5, 50.0, N_NUMERIC)
    offsets = shape.uniform(-100.0, 100.0, N_NUMERIC)
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(rows, N_NUMERIC))
    logit = z[:, :6] @ np.array([1.2, -0.9, 0.7, 0.5, -0.4, 0.3]) + 0.8 * z[:, 6] * z[:, 7]
    logit += 1.5 * np.sin(2.0 * z[:, 8])
    frame = pd.DataFrame(z * scales + offsets, columns=list(NUMERIC_COLUMNS))
    for position, (name, levels) in enumerate(CATEGORIES.items()):
        effects = np.linspace(-1.0, 1.0, len(levels)) * (1.0 - 0.3 * position)
        codes = rng.integers(0, len(levels), rows)
        logit += effects[codes]
        frame[name] = pd.Series(np.asarray(levels, dtype=object)[codes], dtype=object)
    probability = 1.0 / (1.0 + np.exp(-(logit - 0.3)))
    for name in frame.columns:
        holes = rng.random(rows) < MISSING_RATE
        frame[name] = frame[name].astype(object).where(~holes, None)
        if name in NUMERIC_COLUMNS:
            frame[name] = frame[name].astype(np.float64)
    frame[TARGET] = (rng.random(rows) < probability).astype(np.int64)
    return frame


def feature_rows(frame: pd.DataFrame) -> list[dict[str, object]]:
    """JSON-ready request rows: feature columns only, missing values as ``None``."""
    features = frame.drop(columns=[TARGET])
    rows: list[dict[str, object]] = []
    for record in features.to_dict(orient="records"):
        rows.append(
            {
                name: None
                if value is None or (isinstance(value, float) and math.isnan(value))
                else value
                for name, value in record.items()
            }
        )
    return rows


def schema_rows(frame: pd.DataFrame, schema: FeatureSchema) -> list[dict[str, object]]:
    """JSON-ready request rows for ``schema``'s columns of ``frame``, as a client would send them:
    ``None`` for missing (blank text included), numbers as numbers, categories as text."""
    return [
        {spec.name: _json_value(spec, record[spec.name]) for spec in schema.features}
        for record in frame.to_dict(orient="records")
    ]


def _json_value(spec: FeatureSpec, value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str) and not value.strip():
        return None  # e.g. the dirty churn export's blank total_charges
    if spec.kind == "categorical":
        return str(value)
    if spec.dtype == "bool":
        return bool(value)
    number = float(value)  # type: ignore[arg-type]
    return int(number) if spec.dtype == "int" else number


def train_bundle(
    root: Path,
    frame: pd.DataFrame,
    estimator: EstimatorName,
    *,
    target: str = TARGET,
    task: TaskChoice = "auto",
    drop: tuple[str, ...] = (),
    model_name: str | None = None,
) -> VerifiedBundle:
    """Train ``estimator`` on ``frame`` through the SageMaker-contract job; return its bundle.

    Every bundle gets the same forest (100 trees, depth 10) whatever its task.
    """
    channel = root / "input" / "data" / "train"
    channel.mkdir(parents=True)
    frame.to_csv(channel / "data.csv", index=False)
    paths = SageMakerPaths(
        train_channel=channel,
        model_dir=root / "model",
        output_data_dir=root / "output" / "data",
        output_dir=root / "output",
    )
    config = TrainingConfig(
        target=target,
        task=task,
        drop=drop,
        estimator=estimator,
        model_name=model_name or f"bench-{estimator.replace('_', '-')}",
        model_version="1",
        n_estimators=100,
        max_depth=10,
        cv_folds=2,
    )
    with contextlib.redirect_stdout(io.StringIO()):  # the job prints its stage markers
        return train(paths, config).bundle


@dataclass(frozen=True)
class BenchModels:
    forest: VerifiedBundle
    logistic: VerifiedBundle
    holdout: pd.DataFrame
    train_seconds: dict[str, float]


def build_models(root: Path) -> BenchModels:
    """Both benchmark bundles under ``root``, plus a fresh holdout frame from another seed."""
    frame = synthetic_frame(TRAIN_ROWS, seed=7)
    seconds: dict[str, float] = {}
    bundles: dict[str, VerifiedBundle] = {}
    estimators: tuple[EstimatorName, ...] = ("random_forest", "logistic_regression")
    for estimator in estimators:
        started = time.perf_counter()
        bundles[estimator] = train_bundle(root / estimator, frame, estimator)
        seconds[estimator] = time.perf_counter() - started
    return BenchModels(
        forest=bundles["random_forest"],
        logistic=bundles["logistic_regression"],
        holdout=synthetic_frame(2000, seed=11),
        train_seconds=seconds,
    )
