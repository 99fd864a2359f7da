"""Score bundles on one holdout file, so candidate and champion are compared like for like."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.csv_rows import feature_rows
from lambdaserve.kernel.encoding import rows_to_columns
from lambdaserve.kernel.errors import InvalidInputError
from lambdaserve.kernel.predictors import load_predictor
from lambdaserve.training.evaluation import binary_metrics


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


def score_on_holdout(bundle: VerifiedBundle, holdout: Holdout) -> dict[str, float]:
    """The bundle's metrics on ``holdout`` (rows with a missing target are skipped)."""
    manifest = bundle.manifest
    if manifest.target not in holdout.rows[0]:
        raise InvalidInputError(
            f"holdout {holdout.path.name} has no target column {manifest.target!r}"
        )
    labelled = [r for r in holdout.rows if (r.get(manifest.target) or "").strip()]
    positive = str(manifest.positive_class).strip().lower()
    y = np.array([r[manifest.target].strip().lower() == positive for r in labelled], dtype=np.int64)
    if len(set(y.tolist())) < 2:
        raise InvalidInputError(f"holdout {holdout.path.name} needs both classes to be scored")
    columns = rows_to_columns(manifest.features, list(feature_rows(manifest.features, labelled)))
    scores = load_predictor(bundle).predict_proba(columns)
    return binary_metrics(y, scores, manifest.decision_threshold)
