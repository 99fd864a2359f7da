"""Export the fitted pipeline to ONNX and keep it only if it agrees with scikit-learn."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.pipeline import Pipeline

from lambdaserve.kernel.manifest import ONNX_FILE, OnnxExport
from lambdaserve.kernel.onnx_predictor import OnnxPredictor
from lambdaserve.kernel.schema import FeatureSchema

log = logging.getLogger(__name__)


def _convert(pipeline: Pipeline, schema: FeatureSchema) -> bytes:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    initial_types = [
        (
            spec.name,
            FloatTensorType([None, 1]) if spec.kind == "numeric" else StringTensorType([None, 1]),
        )
        for spec in schema.features
    ]
    classifier = pipeline.steps[-1][1]
    model = to_onnx(
        pipeline, initial_types=initial_types, options={id(classifier): {"zipmap": False}}
    )
    return bytes(model.SerializeToString())


def export_onnx(
    pipeline: Pipeline,
    schema: FeatureSchema,
    holdout: dict[str, npt.NDArray[np.generic]],
    sklearn_scores: npt.NDArray[np.float64],
    tolerance: float,
    bundle_dir: Path,
) -> OnnxExport:
    """Write ``model.onnx`` when conversion works and parity holds; say why not otherwise."""
    try:
        model = _convert(pipeline, schema)
        onnx_scores = OnnxPredictor(model, schema).predict_proba(holdout)
    except Exception as exc:  # skl2onnx raises many unrelated types for unsupported models
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        log.warning("ONNX export unsupported, serving will use scikit-learn (%s)", reason)
        return OnnxExport(status="unsupported", reason=reason)
    max_diff = float(np.max(np.abs(onnx_scores - sklearn_scores)))
    if not max_diff <= tolerance:
        log.warning("ONNX parity failed: max |diff| %.3g > %.3g; ONNX refused", max_diff, tolerance)
        return OnnxExport(
            status="parity_failed",
            max_abs_diff=max_diff,
            tolerance=tolerance,
            reason=f"max probability difference {max_diff:.3g} exceeds {tolerance:.3g}",
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
