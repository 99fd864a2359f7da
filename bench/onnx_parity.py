"""ONNX Runtime against scikit-learn on rows neither saw in training, for each bundle and task.

Both predictors are loaded from the bundle the way serving loads them (``load_predictor`` with the
runtime forced), and score the same column arrays. What is compared is what serving answers:
the positive class's probability (binary), every class's probability (multiclass), the predicted
number (regression). A regression's difference is also reported relative to the target's standard
deviation (the manifest's ``target_range.std``), the scale its parity target is stated on; for
classification that relative figure is the absolute one. The build-time figure from the manifest
is reported next to it: training checks parity on its own holdout split, this checks fresh data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.encoding import rows_to_columns
from lambdaserve.kernel.manifest import Task
from lambdaserve.kernel.predictors import load_predictor


@dataclass(frozen=True)
class Parity:
    rows: int
    max_abs_diff: float
    mean_abs_diff: float
    #: Rows whose served label differs (threshold for binary, arg-max for multiclass); regression
    #: has no labels.
    label_flips: int | None
    build_time_max_abs_diff: float | None
    tolerance: float | None
    task: Task = "binary_classification"
    #: What differences are divided by for ``max_relative_diff``: the target's standard deviation
    #: for regression, 1 for probabilities.
    scale: float = 1.0

    @property
    def max_relative_diff(self) -> float:
        """The figure the parity target applies to: |diff| for probabilities, |diff|/std else."""
        return self.max_abs_diff / self.scale

    @property
    def measure(self) -> str:
        return "max |diff| / std" if self.task == "regression" else "max |diff|"


def measure_parity(bundle: VerifiedBundle, rows: Sequence[dict[str, object]]) -> Parity:
    manifest = bundle.manifest
    columns = rows_to_columns(manifest.features, rows)
    onnx_predictor = load_predictor(bundle, "onnx")
    sklearn_predictor = load_predictor(bundle, "sklearn")
    flips: int | None = None
    scale = 1.0
    if manifest.task == "binary_classification":
        onnx = onnx_predictor.predict_proba(columns)
        sklearn = sklearn_predictor.predict_proba(columns)
        threshold = manifest.decision_threshold
        flips = int(np.sum((onnx >= threshold) != (sklearn >= threshold)))
    else:
        onnx = onnx_predictor.predict_outputs(columns)
        sklearn = sklearn_predictor.predict_outputs(columns)
        if manifest.task == "multiclass_classification":
            flips = int(np.sum(onnx.argmax(axis=1) != sklearn.argmax(axis=1)))
        elif manifest.target_range is not None and manifest.target_range.std > 0:
            scale = manifest.target_range.std
    difference = np.abs(onnx - sklearn)
    return Parity(
        rows=len(rows),
        max_abs_diff=float(difference.max()),
        mean_abs_diff=float(difference.mean()),
        label_flips=flips,
        build_time_max_abs_diff=manifest.onnx.max_abs_diff,
        tolerance=manifest.onnx.tolerance,
        task=manifest.task,
        scale=scale,
    )


def as_json(result: Parity) -> dict[str, Any]:
    return {**asdict(result), "max_relative_diff": result.max_relative_diff}
