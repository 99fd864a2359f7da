"""scikit-learn predictor loaded with skops, trusting only the types listed here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import numpy.typing as npt

from lambdaserve.core.bundle import VerifiedBundle
from lambdaserve.core.encoding import columns_to_matrix
from lambdaserve.core.errors import UnsafeArtifactError

#: Types skops does not trust by default that our pipelines legitimately contain. The list lives in
#: code, never in the artifact: a bundle asking for anything else is refused.
TRUSTED_SKOPS_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)


def load_skops_model(path: str) -> object:
    import skops.io as sio

    untrusted = set(sio.get_untrusted_types(file=path))
    refused = sorted(untrusted - TRUSTED_SKOPS_TYPES)
    if refused:
        raise UnsafeArtifactError(f"model file holds types lambdaserve does not trust: {refused}")
    return sio.load(path, trusted=sorted(untrusted))


class SklearnPredictor:
    runtime: Literal["sklearn"] = "sklearn"

    def __init__(self, bundle: VerifiedBundle) -> None:
        self._model = load_skops_model(str(bundle.file(bundle.manifest.skops_file)))
        self._schema = bundle.manifest.features

    def predict_proba(
        self, columns: Mapping[str, npt.NDArray[np.generic]]
    ) -> npt.NDArray[np.float64]:
        matrix = columns_to_matrix(self._schema, columns)
        probabilities = self._model.predict_proba(matrix)  # type: ignore[attr-defined]
        return np.asarray(probabilities, dtype=np.float64)[:, 1]
