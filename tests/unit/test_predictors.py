"""ONNX Runtime and scikit-learn agree; the right runtime is chosen; skops trust is ours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lambdaserve.datasets import churn
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.encoding import rows_to_columns
from lambdaserve.kernel.errors import BundleError, UnsafeArtifactError
from lambdaserve.kernel.predictors import load_predictor
from lambdaserve.kernel.sklearn_predictor import TRUSTED_SKOPS_TYPES, load_skops_model
from tests.support.bundles import train_bundle

pytestmark = pytest.mark.unit


def _rows(bundle: VerifiedBundle, frame: pd.DataFrame) -> list[dict[str, object]]:
    rows = []
    for record in frame.to_dict(orient="records"):
        row: dict[str, object] = {}
        for spec in bundle.manifest.features.features:
            value = record[spec.name]
            if spec.kind == "numeric":
                text = str(value).strip()
                row[spec.name] = (
                    None if value is None or text in ("", "nan", "None") else float(text)
                )
            else:
                row[spec.name] = None if value is None or pd.isna(value) else str(value)
        rows.append(row)
    return rows


def test_onnx_and_sklearn_agree_on_fresh_dirty_rows(churn_bundle: VerifiedBundle) -> None:
    rows = _rows(churn_bundle, churn.generate_churn(500, seed=99))
    columns = rows_to_columns(churn_bundle.manifest.features, rows)
    onnx = load_predictor(churn_bundle)
    sklearn = load_predictor(churn_bundle, prefer="sklearn")
    assert (onnx.runtime, sklearn.runtime) == ("onnx", "sklearn")
    difference = np.abs(onnx.predict_proba(columns) - sklearn.predict_proba(columns))
    assert difference.max() <= 1e-5


@pytest.mark.parametrize("estimator", ["random_forest", "logistic_regression"])
def test_parity_on_public_breast_cancer_data(
    tmp_path: Path, cancer_frame: pd.DataFrame, estimator: str
) -> None:
    bundle = train_bundle(
        tmp_path,
        cancer_frame,
        target="target",
        estimator=estimator,
        model_name="cancer",
        model_version="1",
    )
    assert bundle.manifest.onnx.status == "ok", bundle.manifest.onnx.reason
    assert bundle.manifest.onnx.max_abs_diff is not None
    assert bundle.manifest.onnx.max_abs_diff <= 1e-5
    rows = _rows(bundle, cancer_frame.sample(200, random_state=1))
    columns = rows_to_columns(bundle.manifest.features, rows)
    onnx = load_predictor(bundle).predict_proba(columns)
    sklearn = load_predictor(bundle, prefer="sklearn").predict_proba(columns)
    assert np.abs(onnx - sklearn).max() <= 1e-5


def test_unconvertible_model_is_served_by_sklearn(churn_hgb_bundle: VerifiedBundle) -> None:
    manifest = churn_hgb_bundle.manifest
    assert manifest.onnx.status in {"unsupported", "parity_failed"}
    assert manifest.onnx.reason
    assert manifest.preferred_runtime == "sklearn"
    assert load_predictor(churn_hgb_bundle).runtime == "sklearn"
    with pytest.raises(BundleError, match="no parity-checked ONNX"):
        load_predictor(churn_hgb_bundle, prefer="onnx")


def test_skops_refuses_types_outside_our_allow_list(tmp_path: Path) -> None:
    import os

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "model.skops"
    sio.dump(FunctionTransformer(func=os.system), path)  # loading would hand out os.system
    untrusted = set(sio.get_untrusted_types(file=str(path)))
    assert untrusted - TRUSTED_SKOPS_TYPES, "the test model must need a type we do not trust"
    with pytest.raises(UnsafeArtifactError, match="does not trust"):
        load_skops_model(str(path))
