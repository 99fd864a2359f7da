"""The SageMaker script-mode training job: data channel in, verified bundle out.

Run as ``python -m lambdaserve.training.job [--name value ...]`` (``training/train.py`` is the
same entry point for SageMaker). On failure it writes a human-readable reason to
``$SM_OUTPUT_DIR/failure`` and exits non-zero, as SageMaker expects; bad data never produces a
traceback.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import numpy.typing as npt
import skops.io as sio
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from lambdaserve.kernel.bundle import VerifiedBundle, seal_bundle
from lambdaserve.kernel.encoding import columns_to_matrix
from lambdaserve.kernel.errors import LambdaserveError, TrainingError
from lambdaserve.kernel.manifest import (
    REFERENCE_FILE,
    SKOPS_FILE,
    DataInfo,
    EstimatorInfo,
    Manifest,
    MetricSummary,
    OnnxExport,
)
from lambdaserve.kernel.reference import build_reference
from lambdaserve.training.cleaning import CleanedData, clean
from lambdaserve.training.data_loading import LoadedData, load_training_data
from lambdaserve.training.estimators import build_pipeline, check_estimator, estimator_params
from lambdaserve.training.evaluation import cross_validate, model_outputs, task_metrics
from lambdaserve.training.hyperparameters import TrainingConfig, load_hyperparameters
from lambdaserve.training.onnx_export import export_onnx, parity_tolerance
from lambdaserve.training.sagemaker_env import SageMakerPaths

log = logging.getLogger("lambdaserve.training")
STAGE_PREFIX = "lambdaserve-stage:"
LIBRARIES = (
    "lambdaserve",
    "scikit-learn",
    "numpy",
    "scipy",
    "skops",
    "skl2onnx",
    "onnx",
    "onnxruntime",
    "pandas",
)


@dataclass(frozen=True)
class TrainingResult:
    bundle: VerifiedBundle
    metrics: dict[str, float]


def _stage(name: str) -> None:
    print(f"{STAGE_PREFIX} {name}", flush=True)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


Columns = dict[str, npt.NDArray[np.generic]]
Target = npt.NDArray[np.int64] | npt.NDArray[np.float64]


def _split(data: CleanedData, config: TrainingConfig) -> tuple[Columns, Columns, Target, Target]:
    """Train and holdout rows, stratified by class for classification."""
    indices = np.arange(len(data.target))
    train_idx, holdout_idx = train_test_split(
        indices,
        test_size=config.test_size,
        stratify=None if data.task == "regression" else data.target,
        random_state=config.random_state,
    )
    train = {name: column[train_idx] for name, column in data.columns.items()}
    holdout = {name: column[holdout_idx] for name, column in data.columns.items()}
    return train, holdout, data.target[train_idx], data.target[holdout_idx]


def _empty_model_dir(bundle_dir: Path) -> Path:
    bundle_dir.mkdir(parents=True, exist_ok=True)
    for stale in bundle_dir.iterdir():
        raise LambdaserveError(f"model directory {bundle_dir} is not empty ({stale.name})")
    return bundle_dir


def _manifest(
    config: TrainingConfig,
    loaded: LoadedData,
    data: CleanedData,
    split_rows: tuple[int, int],
    metrics: dict[str, float],
    cv_metrics: dict[str, MetricSummary],
    onnx_export: OnnxExport,
) -> Manifest:
    train_rows, holdout_rows = split_rows
    return Manifest(
        name=config.model_name,
        version=config.model_version or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        created_at=datetime.now(UTC),
        task=data.task,
        target=config.target,
        classes=data.classes,
        positive_class=data.positive_class,
        target_range=data.target_range,
        features=data.schema,
        estimator=EstimatorInfo(name=config.estimator, params=estimator_params(config)),
        metrics=metrics,
        cv_metrics=cv_metrics,
        library_versions=library_versions(),
        data=DataInfo(
            fingerprint=loaded.fingerprint,
            rows=len(data.target),
            train_rows=train_rows,
            holdout_rows=holdout_rows,
            positive_rate=(
                float(data.target.mean()) if data.task == "binary_classification" else None
            ),
            dropped_columns=data.dropped,
            coercions=data.coercions,
        ),
        onnx=onnx_export,
    )


def _write_metrics(paths: SageMakerPaths, manifest: Manifest, digest: str) -> None:
    """``output/data/metrics.json``: what SageMaker keeps beside the model (the job's report)."""
    paths.output_data_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "task": manifest.task,
        "metrics": manifest.metrics,
        "cv_metrics": {k: v.model_dump() for k, v in manifest.cv_metrics.items()},
        "onnx": manifest.onnx.model_dump(),
        "coercions": [c.model_dump() for c in manifest.data.coercions],
        "bundle_digest": digest,
    }
    (paths.output_data_dir / "metrics.json").write_text(json.dumps(report, indent=2))


def _require_every_class(pipeline: Pipeline, data: CleanedData) -> None:
    """Serving answers one probability per manifest class: the fitted model must know them all."""
    if data.task != "regression" and len(pipeline.classes_) != len(data.classes):
        raise TrainingError(
            f"the training split holds {len(pipeline.classes_)} of the {len(data.classes)} "
            f"classes of {data.classes}; add rows of the rare classes"
        )


def _export(
    pipeline: Pipeline,
    data: CleanedData,
    holdout: tuple[Columns, npt.NDArray[np.float64]],
    config: TrainingConfig,
    bundle_dir: Path,
) -> OnnxExport:
    if not config.onnx:
        return OnnxExport(status="disabled", reason="onnx hyperparameter is false")
    columns, outputs = holdout
    std = data.target_range.std if data.target_range else None
    tolerance = parity_tolerance(config.parity_tolerance, data.task, std)
    return export_onnx(
        pipeline, data.schema, columns, outputs, tolerance, bundle_dir, task=data.task
    )


def train(paths: SageMakerPaths, config: TrainingConfig) -> TrainingResult:
    """The job: load, clean, cross-validate, fit, evaluate, export ONNX, write the bundle."""
    _stage("load data")
    loaded = load_training_data(paths.train_channel)
    log.info("read %d rows x %d columns from %s", *loaded.frame.shape, ", ".join(loaded.files))
    _stage("clean data")
    data = clean(loaded.frame, config)
    check_estimator(config.estimator, data.task)
    log.info("task: %s, classes: %s", data.task, list(data.classes))
    train_cols, holdout_cols, y_train, y_holdout = _split(data, config)
    schema, task, classes = data.schema, data.task, data.classes
    x_train = columns_to_matrix(schema, train_cols)
    x_holdout = columns_to_matrix(schema, holdout_cols)
    pipeline = build_pipeline(schema, config, task)
    _stage(f"cross-validate ({config.cv_folds} folds)")
    cv_metrics = cross_validate(
        pipeline, x_train, y_train, config.cv_folds, config.random_state, task=task, classes=classes
    )
    _stage("fit")
    pipeline.fit(x_train, y_train)
    _require_every_class(pipeline, data)
    _stage("evaluate holdout")
    outputs = model_outputs(pipeline, x_holdout, task, len(classes))
    metrics = task_metrics(task, y_holdout, outputs, classes)
    log.info("holdout metrics: %s", json.dumps(metrics))
    bundle_dir = _empty_model_dir(paths.model_dir)
    _stage("export ONNX")
    onnx_export = _export(pipeline, data, (holdout_cols, outputs), config, bundle_dir)
    _stage("write bundle")
    sio.dump(pipeline, bundle_dir / SKOPS_FILE)
    reference = build_reference(schema, train_cols, outputs, task=task, classes=classes)
    (bundle_dir / REFERENCE_FILE).write_text(reference.model_dump_json(indent=1, exclude_none=True))
    manifest = _manifest(
        config, loaded, data, (len(y_train), len(y_holdout)), metrics, cv_metrics, onnx_export
    )
    bundle = seal_bundle(bundle_dir, manifest)
    _write_metrics(paths, manifest, bundle.digest)
    _stage("done")
    return TrainingResult(bundle=bundle, metrics=metrics)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    env = os.environ if environ is None else environ
    paths = SageMakerPaths.from_environ(env)
    try:
        config = load_hyperparameters(env, sys.argv[1:] if argv is None else argv)
        result = train(paths, config)
    except LambdaserveError as exc:
        return _fail(paths, str(exc), code=1)
    except Exception as exc:  # last resort: a reason in the failure file, not a traceback
        log.debug("unexpected training failure", exc_info=True)
        return _fail(paths, f"unexpected error ({type(exc).__name__}): {exc}", code=2)
    print(
        json.dumps({"bundle_digest": result.bundle.digest, "metrics": result.metrics}), flush=True
    )
    return 0


def _fail(paths: SageMakerPaths, reason: str, *, code: int) -> int:
    log.error("training failed: %s", reason)
    try:
        paths.output_dir.mkdir(parents=True, exist_ok=True)
        paths.failure_file.write_text(reason + "\n")
    except OSError as exc:
        log.error("could not write the failure file %s: %s", paths.failure_file, exc)
    return code


if __name__ == "__main__":
    sys.exit(main())
