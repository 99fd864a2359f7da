"""``lambdaserve.save_model``: any fitted scikit-learn model, with the DataFrame it was fitted on,
becomes a verified bundle, the same contract our own training job writes.

The schema and the reference profile are inferred from ``X``; ``eval_set`` gives the holdout
metrics the promotion gate reads. The model is exported to ONNX when skl2onnx converts it and ONNX
Runtime agrees with scikit-learn on the holdout (as for our own models); it is always saved with
skops, and the saved file is loaded back and must reproduce the model's outputs exactly. Every
problem is found before anything is written; a failure leaves nothing at ``path``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import skops.io as sio

from lambdaserve.kernel.bundle import VerifiedBundle, seal_bundle, verify_bundle
from lambdaserve.kernel.errors import ModelSaveError, UnsafeArtifactError
from lambdaserve.kernel.manifest import (
    REFERENCE_FILE,
    SKOPS_FILE,
    DataInfo,
    EstimatorInfo,
    Manifest,
    ModelSource,
    OnnxExport,
    TargetRange,
    Task,
)
from lambdaserve.kernel.model_trust import ModelTrust
from lambdaserve.kernel.reference import build_reference
from lambdaserve.kernel.schema import FeatureSchema
from lambdaserve.kernel.sklearn_predictor import custom_types_needed, load_skops_model
from lambdaserve.training.frames import frame_columns
from lambdaserve.training.hyperparameters import TrainingConfig
from lambdaserve.training.job import library_versions
from lambdaserve.training.model_inspection import InspectedModel, inspect_model
from lambdaserve.training.onnx_export import export_onnx, parity_tolerance
from lambdaserve.training.user_models import (
    estimator_info,
    frame_outputs,
)

#: Rows of ``X`` the skops file, loaded back, must answer exactly as the model did.
ROUND_TRIP_ROWS = 2000
DEFAULT_PARITY_TOLERANCE = TrainingConfig.model_fields["parity_tolerance"].default


def _fingerprint(frames: Iterable[pd.DataFrame]) -> str:
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(",".join(map(str, frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _write_model(
    model: object,
    staging: Path,
    trusted: Iterable[str],
    check: tuple[pd.DataFrame, npt.NDArray[np.float64], Task],
) -> tuple[str, ...]:
    """Dump with skops, refuse types the caller did not trust, and prove the saved file loads
    back (with only that trust) and answers on ``check``'s rows exactly the outputs the model
    gave there."""
    path = staging / SKOPS_FILE
    sio.dump(model, path)
    custom = tuple(custom_types_needed(sio.get_untrusted_types(file=str(path))))
    trust = ModelTrust.from_settings(types=trusted)
    frame, expected, task = check
    try:
        loaded = load_skops_model(str(path), trust, custom)
    except UnsafeArtifactError:
        raise ModelSaveError(
            "the model holds types skops does not load by default: "
            + ", ".join(trust.refused(custom))
            + ". If they are your own code, pass trusted=[...] naming each (and deploy their "
            "package with --code DIR or the stage's custom_code setting)"
        ) from None
    if not np.array_equal(frame_outputs(loaded, frame, task, "X"), expected):
        raise ModelSaveError("the model saved with skops does not reproduce its own outputs")
    return custom


def _staging(path: Path) -> Path:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ModelSaveError(f"{path} already exists and is not an empty directory")
    staging = path.parent / f".{path.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _publish(staging: Path, path: Path) -> None:
    """Move the finished bundle to ``path`` (an empty directory such as ``SM_MODEL_DIR`` is
    filled in place: it may be a mount point)."""
    if path.exists():
        for item in staging.iterdir():
            item.rename(path / item.name)
        staging.rmdir()
    else:
        staging.rename(path)


def _export(
    model: object,
    parity: tuple[pd.DataFrame, npt.NDArray[np.float64]],
    schema_and_task: tuple[FeatureSchema, Task],
    tolerance: float,
    target_range: TargetRange | None,
    staging: Path,
) -> OnnxExport:
    frame, outputs = parity
    schema, task = schema_and_task
    absolute = parity_tolerance(tolerance, task, target_range.std if target_range else None)
    columns = frame_columns(schema, frame)
    return export_onnx(model, schema, columns, outputs, absolute, staging, task=task)


def _manifest(
    seen: InspectedModel,
    name: str,
    version: str | None,
    custom: tuple[str, ...],
    source: ModelSource | None,
    exported: OnnxExport,
    estimator: EstimatorInfo,
) -> Manifest:
    holdout = seen.evaluation
    holdout_rows = len(holdout.frame) if holdout else 0
    return Manifest(
        name=name,
        version=version or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        created_at=datetime.now(UTC),
        task=seen.task,
        target=seen.target,
        classes=seen.classes,
        positive_class=seen.classes[1] if seen.task == "binary_classification" else None,
        target_range=seen.target_range,
        features=seen.schema,
        estimator=estimator,
        metrics=holdout.metrics if holdout else {},
        cv_metrics={},
        library_versions=library_versions(),
        data=DataInfo(
            fingerprint=_fingerprint([seen.frame] + ([holdout.frame] if holdout else [])),
            rows=len(seen.frame) + holdout_rows,
            train_rows=len(seen.frame),
            holdout_rows=holdout_rows,
            positive_rate=seen.positive_rate,
        ),
        model_input=seen.model_input,
        custom_types=custom,
        source=source or ModelSource(kind="save_model"),
        onnx=exported,
    )


def save_model(
    model: object,
    path: str | os.PathLike[str],
    *,
    name: str,
    X: object,
    y: object | None = None,
    eval_set: tuple[object, object] | None = None,
    task: str | None = None,
    trusted: Iterable[str] = (),
    version: str | None = None,
    onnx: bool = True,
    tolerance: float = DEFAULT_PARITY_TOLERANCE,
    source: ModelSource | None = None,
) -> VerifiedBundle:
    """Write ``model`` (any fitted scikit-learn classifier or regressor, or a ``Pipeline`` ending
    in one, fitted on the DataFrame ``X``) as a verified bundle directory at ``path``.

    ``y`` (optional) are ``X``'s targets (the class balance, a regression's range);
    ``eval_set=(X_holdout, y_holdout)`` gives the holdout metrics the promotion gate reads;
    ``task`` (``binary``, ``multiclass``, ``regression``) is checked against the model's own;
    ``trusted`` names the types beyond scikit-learn's (your own transformers) the model file may
    hold; ``onnx=False`` skips the ONNX export, ``tolerance`` is its parity tolerance. Returns the
    sealed bundle; ``lambdaserve import PATH`` stores and registers it.
    """
    seen = inspect_model(model, X, y, eval_set, task)
    destination = Path(path)
    staging = _staging(destination)
    try:
        rows = ROUND_TRIP_ROWS
        check = (seen.frame.head(rows), seen.train_outputs[:rows], seen.task)
        custom = _write_model(model, staging, trusted, check)
        exported = (
            _export(
                model, seen.parity, (seen.schema, seen.task), tolerance, seen.target_range, staging
            )
            if onnx
            else OnnxExport(status="disabled", reason="save_model(onnx=False)")
        )
        reference = build_reference(
            seen.schema,
            frame_columns(seen.schema, seen.frame),
            seen.parity[1],
            task=seen.task,
            classes=seen.classes,
        )
        (staging / REFERENCE_FILE).write_text(
            reference.model_dump_json(indent=1, exclude_none=True)
        )
        manifest = _manifest(seen, name, version, custom, source, exported, estimator_info(model))
        seal_bundle(staging, manifest)
        _publish(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return verify_bundle(destination)
