"""Score bundles on one holdout file, so candidate and champion are compared like for like."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.csv_rows import feature_rows
from lambdaserve.kernel.encoding import rows_to_columns
from lambdaserve.kernel.errors import InvalidInputError
from lambdaserve.kernel.manifest import Manifest
from lambdaserve.kernel.model_trust import NO_TRUST, ModelTrust
from lambdaserve.kernel.predictors import load_predictor
from lambdaserve.training.metrics import binary_metrics, task_metrics


@dataclass(frozen=True)
class Holdout:
    path: Path
    rows: list[dict[str, str]]
    fingerprint: str

    @property
    def description(self) -> str:
        return f"{self.path.name} ({len(self.rows)} rows, sha256 {self.fingerprint[:12]})"

    @classmethod
    def read(cls, path: Path) -> Holdout:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"cannot read holdout {path}: {exc.strerror}") from exc
        rows = list(csv.DictReader(data.decode("utf-8-sig").splitlines()))
        if not rows:
            raise InvalidInputError(f"holdout {path} has no rows")
        return cls(path=path, rows=rows, fingerprint=hashlib.sha256(data).hexdigest())


def score_on_holdout(
    bundle: VerifiedBundle, holdout: Holdout, trust: ModelTrust = NO_TRUST
) -> dict[str, float]:
    """The bundle's metrics for its task on ``holdout`` (rows with a missing target are
    skipped)."""
    manifest = bundle.manifest
    if manifest.target not in holdout.rows[0]:
        raise InvalidInputError(
            f"holdout {holdout.path.name} has no target column {manifest.target!r}"
        )
    labelled = [r for r in holdout.rows if (r.get(manifest.target) or "").strip()]
    y = _observed(manifest, [r[manifest.target].strip() for r in labelled], holdout.path.name)
    columns = rows_to_columns(manifest.features, list(feature_rows(manifest.features, labelled)))
    outputs = load_predictor(bundle, trust=trust).predict_outputs(columns)
    if manifest.task == "binary_classification":
        return binary_metrics(y.astype(np.int64), outputs[:, 1], manifest.decision_threshold)
    return task_metrics(manifest.task, y, outputs, manifest.classes)


def _observed(manifest: Manifest, values: list[str], name: str) -> npt.NDArray[np.generic]:
    """The holdout's target as the model's training encoded it: 0/1 (binary, 1 the positive
    class), the class index (multiclass) or the number (regression)."""
    if manifest.task == "regression":
        try:
            numbers = np.array([float(v) for v in values], dtype=np.float64)
        except ValueError as exc:
            raise InvalidInputError(f"holdout {name}: a regression target must be numeric") from exc
        if not np.isfinite(numbers).all():
            raise InvalidInputError(f"holdout {name}: the target holds non-finite values")
        return numbers
    index = {str(c).strip().lower(): i for i, c in enumerate(manifest.classes)}
    unknown = sorted({v for v in values if v.lower() not in index})
    if unknown:
        raise InvalidInputError(
            f"holdout {name}: target values the model never learned: {unknown[:5]}"
        )
    codes = np.array([index[v.lower()] for v in values], dtype=np.int64)
    if manifest.task == "binary_classification":
        positive = index[str(manifest.require_positive_class).strip().lower()]
        codes = (codes == positive).astype(np.int64)
    if len(set(codes.tolist())) < 2:
        raise InvalidInputError(f"holdout {name} needs at least two classes to be scored")
    return codes
