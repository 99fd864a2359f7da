"""scikit-learn predictor loaded with skops, trusting only the types listed here and those the
deployment trusts (``ModelTrust``), never what the artifact asks for."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Literal

import numpy as np
import numpy.typing as npt

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.encoding import columns_to_matrix
from lambdaserve.kernel.errors import BundleError, UnsafeArtifactError
from lambdaserve.kernel.model_trust import NO_TRUST, ModelTrust

#: Types skops does not trust by default that our pipelines legitimately contain. The list lives in
#: code, never in the artifact: a bundle asking for anything else is refused.
TRUSTED_SKOPS_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        # Holds a regex and dtype lists; ColumnTransformer keeps it beside the resolved columns.
        "sklearn.compose._column_transformer.make_column_selector",
    }
)


def custom_types_needed(untrusted: list[str]) -> list[str]:
    """Of skops' untrusted types, those beyond lambdaserve's allow-list."""
    return sorted(set(untrusted) - TRUSTED_SKOPS_TYPES)


def load_skops_model(
    path: str, trust: ModelTrust = NO_TRUST, declared: tuple[str, ...] | None = None
) -> object:
    """Load a skops file when every type it holds is on our allow-list or trusted by this
    deployment; ``declared`` (the manifest's ``custom_types``) must name every such type."""
    import skops.io as sio

    untrusted = sorted(sio.get_untrusted_types(file=path))
    extra = custom_types_needed(untrusted)
    undeclared = sorted(set(extra) - set(declared or ())) if declared is not None else []
    if undeclared:
        raise UnsafeArtifactError(
            f"model file holds types its manifest does not declare: {undeclared}; the bundle "
            "was not written by save_model or was altered"
        )
    refused = trust.refused(extra)
    if refused:
        raise UnsafeArtifactError(
            "model file holds types this deployment does not trust: "
            + ", ".join(refused)
            + " (name their code with --code DIR, or trust each with --trust TYPE; on AWS, the "
            "stage's custom_code setting)"
        )
    trust.activate()
    try:
        return sio.load(path, trusted=untrusted)
    except (ImportError, AttributeError) as exc:
        raise UnsafeArtifactError(
            f"model file needs code this deployment does not have ({exc}): name the directory "
            "of its package with --code DIR (on AWS, the stage's custom_code setting)"
        ) from exc


def _require_pandas() -> None:
    """At load, not at the first request: the function answers 503 with the reason."""
    if importlib.util.find_spec("pandas") is None:
        raise BundleError(
            "this bundle's model takes a pandas DataFrame and pandas is not installed here: "
            "serve it with a stage whose dataframe_inputs is true (or with ONNX)"
        )


def _single_threaded(model: object) -> None:
    """Serve with one thread: a forest trained with ``n_jobs=-1`` spends more time starting joblib
    workers than predicting one row (measured: 17.9 ms against 3.9 ms per row)."""
    get_params = getattr(model, "get_params", None)
    if get_params is None:
        return
    jobs = {name: 1 for name in get_params(deep=True) if name.split("__")[-1] == "n_jobs"}
    if jobs:
        model.set_params(**jobs)  # type: ignore[attr-defined]


class SklearnPredictor:
    runtime: Literal["sklearn"] = "sklearn"

    def __init__(self, bundle: VerifiedBundle, trust: ModelTrust = NO_TRUST) -> None:
        manifest = bundle.manifest
        path = str(bundle.file(manifest.skops_file))
        self._model = load_skops_model(path, trust, manifest.custom_types)
        _single_threaded(self._model)
        self._schema = manifest.features
        self._input = manifest.model_input
        if self._input.kind == "dataframe":
            _require_pandas()
        self._regression = manifest.task == "regression"

    def _model_input(self, columns: Mapping[str, npt.NDArray[np.generic]]) -> object:
        if self._input.kind == "dataframe":
            from lambdaserve.kernel.model_frames import columns_to_frame

            return columns_to_frame(self._schema, self._input, columns)
        return columns_to_matrix(self._schema, columns)

    def predict_outputs(
        self, columns: Mapping[str, npt.NDArray[np.generic]]
    ) -> npt.NDArray[np.float64]:
        matrix = self._model_input(columns)
        if self._regression:
            prediction = self._model.predict(matrix)  # type: ignore[attr-defined]
            return np.asarray(prediction, dtype=np.float64).reshape(-1)
        probabilities = self._model.predict_proba(matrix)  # type: ignore[attr-defined]
        return np.asarray(probabilities, dtype=np.float64)

    def predict_proba(
        self, columns: Mapping[str, npt.NDArray[np.generic]]
    ) -> npt.NDArray[np.float64]:
        return self.predict_outputs(columns)[:, 1]
