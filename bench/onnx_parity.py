"""ONNX Runtime against scikit-learn on rows neither saw in training, for each bundle.

Both predictors are loaded from the bundle the way serving loads them (``load_predictor`` with the
runtime forced), and score the same column arrays. The build-time figure from the manifest is
reported next to it: training checks parity on its own holdout split, this checks fresh data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.encoding import rows_to_columns
from lambdaserve.kernel.predictors import load_predictor


@dataclass(frozen=True)
class Parity:
    rows: int
    max_abs_diff: float
    mean_abs_diff: float
    label_flips: int
    build_time_max_abs_diff: float | None
    tolerance: float | None


def measure_parity(bundle: VerifiedBundle, rows: Sequence[dict[str, object]]) -> Parity:
    manifest = bundle.manifest
    columns = rows_to_columns(manifest.features, rows)
    onnx = load_predictor(bundle, "onnx").predict_proba(columns)
    sklearn = load_predictor(bundle, "sklearn").predict_proba(columns)
    difference = np.abs(onnx - sklearn)
    threshold = manifest.decision_threshold
    return Parity(
        rows=len(rows),
        max_abs_diff=float(difference.max()),
        mean_abs_diff=float(difference.mean()),
        label_flips=int(np.sum((onnx >= threshold) != (sklearn >= threshold))),
        build_time_max_abs_diff=manifest.onnx.max_abs_diff,
        tolerance=manifest.onnx.tolerance,
    )


def as_json(result: Parity) -> dict[str, Any]:
    return asdict(result)
