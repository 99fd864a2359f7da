"""ONNX Runtime predictor: one named input per feature, as skl2onnx exported the pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.errors import BundleError
from lambdaserve.kernel.schema import FeatureSchema

#: The outputs skl2onnx names: class probabilities (zipmap off) or a regressor's prediction.
PROBABILITIES_OUTPUT = "probabilities"
PREDICTION_OUTPUT = "variable"


class OnnxPredictor:
    runtime: Literal["onnx"] = "onnx"

    def __init__(
        self, model: bytes | Path, schema: FeatureSchema, *, regression: bool = False
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # One request at a time per execution environment: threads only add start-up cost.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        source = model if isinstance(model, bytes) else str(model)
        try:
            self._session = ort.InferenceSession(
                source, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BundleError(f"ONNX model could not be loaded: {exc}") from exc
        inputs = [i.name for i in self._session.get_inputs()]
        if len(inputs) != len(schema.features):
            raise BundleError(
                f"ONNX model takes {len(inputs)} inputs but the schema has {len(schema.features)}"
            )
        self._output = PREDICTION_OUTPUT if regression else PROBABILITIES_OUTPUT
        # skl2onnx sanitizes input names (spaces become underscores); inputs keep schema order.
        self._inputs = [
            (input_name, spec.name, spec.kind == "numeric")
            for input_name, spec in zip(inputs, schema.features, strict=True)
        ]

    @classmethod
    def from_bundle(cls, bundle: VerifiedBundle) -> OnnxPredictor:
        manifest = bundle.manifest
        if manifest.onnx.file is None:
            raise BundleError("bundle has no ONNX model")
        return cls(
            bundle.file(manifest.onnx.file),
            manifest.features,
            regression=manifest.task == "regression",
        )

    def predict_outputs(
        self, columns: Mapping[str, npt.NDArray[np.generic]]
    ) -> npt.NDArray[np.float64]:
        feeds = {
            input_name: (
                columns[name].astype(np.float32).reshape(-1, 1)
                if numeric
                else columns[name].astype(object).reshape(-1, 1)
            )
            for input_name, name, numeric in self._inputs
        }
        (outputs,) = self._session.run([self._output], feeds)
        values = np.asarray(outputs, dtype=np.float64)
        return values.reshape(-1) if self._output == PREDICTION_OUTPUT else values

    def predict_proba(
        self, columns: Mapping[str, npt.NDArray[np.generic]]
    ) -> npt.NDArray[np.float64]:
        return self.predict_outputs(columns)[:, 1]
