"""Predictors turn column arrays into what the model outputs: the probability of every class,
in the manifest's class order (classification), or the predicted number (regression).

ONNX Runtime serves a bundle whose ONNX model passed the build-time parity check; scikit-learn
(loaded through skops with our own allow-list of types) serves the rest. Both adapters import their
runtime lazily so that importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.errors import BundleError
from lambdaserve.kernel.model_trust import NO_TRUST, ModelTrust

Runtime = Literal["onnx", "sklearn"]


class Predictor(Protocol):
    @property
    def runtime(self) -> Runtime: ...

    def predict_outputs(
        self, columns: Mapping[str, npt.NDArray[np.generic]]
    ) -> npt.NDArray[np.float64]:
        """Classification: class probabilities, shape ``(n_rows, n_classes)`` in the manifest's
        class order; regression: the prediction, shape ``(n_rows,)``."""
        ...

    def predict_proba(
        self, columns: Mapping[str, npt.NDArray[np.generic]]
    ) -> npt.NDArray[np.float64]:
        """Binary classification: the positive class's probability per row, ``(n_rows,)``."""
        ...


def load_predictor(
    bundle: VerifiedBundle, prefer: Runtime | None = None, trust: ModelTrust = NO_TRUST
) -> Predictor:
    """The fastest predictor the bundle supports, or the one ``prefer`` asks for; ``trust`` is
    what this deployment lets a scikit-learn model file hold beyond our allow-list."""
    runtime = prefer or bundle.manifest.preferred_runtime
    if runtime == "onnx":
        if bundle.manifest.preferred_runtime != "onnx":
            reason = bundle.manifest.onnx.reason or bundle.manifest.onnx.status
            raise BundleError(f"bundle has no parity-checked ONNX model ({reason})")
        from lambdaserve.kernel.onnx_predictor import OnnxPredictor

        return OnnxPredictor.from_bundle(bundle)
    from lambdaserve.kernel.sklearn_predictor import SklearnPredictor

    return SklearnPredictor(bundle, trust)
