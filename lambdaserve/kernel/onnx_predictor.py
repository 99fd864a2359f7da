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

PROBABILITIES_OUTPUT = "probabilities"


class OnnxPredictor:
    runtime: Literal["onnx"] = "onnx"

    def __init__(self, model: bytes | Path, schema: FeatureSchema) -> None:
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
        # skl2onnx sanitizes input names (spaces become underscores); inputs keep schema order.
        self._inputs = [
            (input_name, spec.name, spec.kind == "numeric")
            for input_name, spec in zip(inputs, schema.features, strict=True)
        ]

    @classmethod
    def from_bundle(cls, bundle: VerifiedBundle) -> OnnxPredictor:
        if bundle.manifest.onnx.file is None:
            raise BundleError("bundle has no ONNX model")
        return cls(bundle.file(bundle.manifest.onnx.file), bundle.manifest.features)

    def predict_proba(
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
        (probabilities,) = self._session.run([PROBABILITIES_OUTPUT], feeds)
        return np.asarray(probabilities, dtype=np.float64)[:, 1]
