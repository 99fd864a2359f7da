"""Export the fitted pipeline to ONNX and keep it only if it agrees with scikit-learn.

Parity is checked on the holdout, on what serving returns: every class probability
(classification, ``parity_tolerance`` absolute), or the prediction (regression, within
``parity_tolerance`` times the target's standard deviation, so the check follows the target's
scale; the absolute tolerance used is recorded).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator

from lambdaserve.kernel.manifest import ONNX_FILE, OnnxExport, Task
from lambdaserve.kernel.onnx_predictor import OnnxPredictor
from lambdaserve.kernel.schema import FeatureSchema
from lambdaserve.training.user_models import final_estimator

log = logging.getLogger(__name__)

#: The smallest target scale a regression's parity tolerance is computed from.
MIN_TARGET_SCALE = 1e-12


def parity_tolerance(tolerance: float, task: Task, target_std: float | None = None) -> float:
    """The absolute tolerance: ``tolerance`` for probabilities, scaled by the target's standard
    deviation for a regression's predictions."""
    if task != "regression":
        return tolerance
    return tolerance * max(target_std or 0.0, MIN_TARGET_SCALE)


def _convert(pipeline: BaseEstimator, schema: FeatureSchema, *, regression: bool) -> bytes:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    initial_types = [
        (
            spec.name,
            FloatTensorType([None, 1]) if spec.kind == "numeric" else StringTensorType([None, 1]),
        )
        for spec in schema.features
    ]
    estimator = final_estimator(pipeline)
    options = None if regression else {id(estimator): {"zipmap": False}}
    model = to_onnx(pipeline, initial_types=initial_types, options=options)
    return bytes(model.SerializeToString())


def export_onnx(
    pipeline: BaseEstimator,
    schema: FeatureSchema,
    holdout: dict[str, npt.NDArray[np.generic]],
    sklearn_outputs: npt.NDArray[np.float64],
    tolerance: float,
    bundle_dir: Path,
    *,
    task: Task = "binary_classification",
) -> OnnxExport:
    """Write ``model.onnx`` when conversion works and ONNX Runtime's outputs on the holdout are
    within ``tolerance`` (absolute: see ``parity_tolerance``) of ``sklearn_outputs``, scikit-learn's
    (class probabilities ``(n, n_classes)``, or predictions ``(n,)``); say why not otherwise."""
    regression = task == "regression"
    try:
        model = _convert(pipeline, schema, regression=regression)
        onnx_outputs = OnnxPredictor(model, schema, regression=regression).predict_outputs(holdout)
    except Exception as exc:  # skl2onnx raises many unrelated types for unsupported models
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        log.warning("ONNX export unsupported, serving will use scikit-learn (%s)", reason)
        return OnnxExport(status="unsupported", reason=reason)
    if onnx_outputs.shape != sklearn_outputs.shape:
        reason = f"ONNX outputs {onnx_outputs.shape}, scikit-learn {sklearn_outputs.shape}"
        log.warning("ONNX export unsupported, serving will use scikit-learn (%s)", reason)
        return OnnxExport(status="unsupported", reason=reason)
    max_diff = float(np.max(np.abs(onnx_outputs - sklearn_outputs)))
    if not max_diff <= tolerance:
        log.warning("ONNX parity failed: max |diff| %.3g > %.3g; ONNX refused", max_diff, tolerance)
        what = "prediction" if regression else "probability"
        return OnnxExport(
            status="parity_failed",
            max_abs_diff=max_diff,
            tolerance=tolerance,
            reason=f"max {what} difference {max_diff:.3g} exceeds {tolerance:.3g}",
        )
    (bundle_dir / ONNX_FILE).write_bytes(model)
    opset = _default_opset(model)
    return OnnxExport(
        status="ok", file=ONNX_FILE, max_abs_diff=max_diff, tolerance=tolerance, opset=opset
    )


def _default_opset(model: bytes) -> int:
    import onnx

    imports = onnx.load_from_string(model).opset_import
    return int(max(o.version for o in imports if o.domain in ("", "ai.onnx")))
