"""``lambdaserve.save_model``: pipelines written as users write them, on real public datasets
(palmerpenguins, scikit-learn's wine and diabetes), become verified bundles that serve exactly
what the model answers; every kind of bad input is refused by name with nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.datasets import load_diabetes, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

import lambdaserve
from lambdaserve.kernel.bundle import UNSAFE_SUFFIXES, verify_bundle
from lambdaserve.kernel.errors import ModelSaveError, UnsafeArtifactError
from lambdaserve.kernel.model_trust import ModelTrust
from lambdaserve.kernel.predictors import load_predictor
from lambdaserve.kernel.sklearn_predictor import load_skops_model
from lambdaserve.training.frames import frame_columns
from tests.support.penguins import NUMERIC, USER_CODE, penguins, user_pipeline


@pytest.fixture(scope="module")
def fitted() -> tuple[Pipeline, pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    x_train, x_test, y_train, y_test = penguins()
    return user_pipeline().fit(x_train, y_train), x_train, x_test, y_train, y_test


def test_a_user_pipeline_becomes_a_bundle_that_serves_what_the_model_answers(
    fitted: tuple[Pipeline, pd.DataFrame, pd.DataFrame, pd.Series, pd.Series], tmp_path: Path
) -> None:
    model, x_train, x_test, y_train, y_test = fitted
    bundle = lambdaserve.save_model(
        model, tmp_path / "bundle", name="penguins", X=x_train, y=y_train, eval_set=(x_test, y_test)
    )
    manifest = verify_bundle(tmp_path / "bundle").manifest
    assert manifest == bundle.manifest
    assert manifest.task == "binary_classification"
    assert manifest.classes == ("female", "male") and manifest.positive_class == "male"
    assert manifest.features.names == tuple(x_train.columns)
    species = next(f for f in manifest.features.features if f.name == "species")
    assert species.kind == "categorical" and species.categories == ("Adelie", "Chinstrap", "Gentoo")
    year = next(f for f in manifest.features.features if f.name == "year")
    assert (year.kind, year.dtype, year.minimum, year.maximum) == ("numeric", "int", 2007, 2009)
    assert (
        manifest.model_input.kind == "dataframe" and manifest.model_input.dtypes["year"] == "int64"
    )
    assert manifest.metrics["roc_auc"] > 0.9 and manifest.data.holdout_rows == len(x_test)
    assert manifest.data.positive_rate == pytest.approx((y_train == "male").mean())
    assert manifest.source is not None and manifest.source.kind == "save_model"
    assert manifest.estimator.name.endswith("HistGradientBoostingClassifier")
    assert manifest.estimator.params["max_iter"] == 40
    # skl2onnx cannot convert a string imputer on NaN: the reason is recorded, sklearn serves.
    assert manifest.onnx.status == "unsupported" and manifest.onnx.reason
    assert not [p for p in (tmp_path / "bundle").iterdir() if p.suffix in UNSAFE_SUFFIXES]

    predictor = load_predictor(bundle)
    served = predictor.predict_outputs(frame_columns(manifest.features, x_test))
    assert predictor.runtime == "sklearn"
    np.testing.assert_allclose(served, model.predict_proba(x_test), rtol=0, atol=1e-12)


def test_missing_values_reach_the_users_imputer_as_missing(
    fitted: tuple[Pipeline, pd.DataFrame, pd.DataFrame, pd.Series, pd.Series], tmp_path: Path
) -> None:
    model, _, x_test, _, _ = fitted
    holes = x_test.copy()
    holes.loc[holes.index[:10], "island"] = np.nan
    holes.loc[holes.index[5:15], "body_mass_g"] = np.nan
    bundle = lambdaserve.save_model(model, tmp_path / "b", name="penguins", X=holes, y=None)
    island = next(f for f in bundle.manifest.features.features if f.name == "island")
    assert island.nullable and island.missing_fraction > 0
    served = load_predictor(bundle).predict_outputs(frame_columns(bundle.manifest.features, holes))
    np.testing.assert_allclose(served, model.predict_proba(holes), rtol=0, atol=1e-12)


def test_multiclass_and_regression_models_take_their_task_from_the_estimator(
    tmp_path: Path,
) -> None:
    wine = load_wine(as_frame=True)
    x, y = wine.data, wine.target.map(dict(enumerate(wine.target_names)))
    forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(x, y)
    bundle = lambdaserve.save_model(forest, tmp_path / "wine", name="wine", X=x, eval_set=(x, y))
    assert bundle.manifest.task == "multiclass_classification"
    assert bundle.manifest.classes == tuple(wine.target_names)
    assert bundle.manifest.metrics["accuracy"] == pytest.approx(forest.score(x, y))
    served = load_predictor(bundle).predict_outputs(frame_columns(bundle.manifest.features, x))
    tolerance = bundle.manifest.onnx.tolerance if bundle.manifest.onnx.status == "ok" else 1e-12
    np.testing.assert_allclose(served, forest.predict_proba(x), rtol=0, atol=tolerance)

    diabetes = load_diabetes(as_frame=True)
    ridge = make_pipeline(StandardScaler(), Ridge()).fit(diabetes.data, diabetes.target)
    bundle = lambdaserve.save_model(
        ridge, tmp_path / "diabetes", name="diabetes", X=diabetes.data, y=diabetes.target
    )
    span = bundle.manifest.target_range
    assert bundle.manifest.task == "regression" and span is not None
    assert (span.minimum, span.maximum) == (diabetes.target.min(), diabetes.target.max())
    assert bundle.manifest.onnx.status == "ok", bundle.manifest.onnx.reason
    for runtime in ("onnx", "sklearn"):
        served = load_predictor(bundle, runtime).predict_outputs(
            frame_columns(bundle.manifest.features, diabetes.data)
        )
        np.testing.assert_allclose(served, ridge.predict(diabetes.data), rtol=1e-5, atol=1e-3)


def _refused(tmp_path: Path, match: str, model: object, **kwargs: object) -> None:
    target = tmp_path / "refused"
    with pytest.raises(ModelSaveError, match=match):
        lambdaserve.save_model(model, target, name="m", **kwargs)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == [], "a refusal leaves nothing behind"


def test_models_that_are_not_fitted_predictors_are_refused_by_name(tmp_path: Path) -> None:
    x_train, _, y_train, _ = penguins()
    numbers = x_train[NUMERIC].fillna(0)
    _refused(tmp_path, "not fitted", user_pipeline(), X=x_train)
    _refused(
        tmp_path,
        "neither a classifier nor a regressor",
        KMeans(2, n_init=1).fit(numbers),
        X=numbers,
    )
    _refused(tmp_path, "no predict method", StandardScaler().fit(numbers), X=numbers)
    _refused(tmp_path, "no predict_proba", SVC().fit(numbers, y_train), X=numbers)
    forest = RandomForestClassifier(n_estimators=5).fit(numbers, y_train)
    _refused(tmp_path, "task 'regression' was asked for", forest, X=numbers, task="regression")


def test_inputs_that_do_not_match_what_the_model_was_fitted_on_are_refused(
    fitted: tuple[Pipeline, pd.DataFrame, pd.DataFrame, pd.Series, pd.Series], tmp_path: Path
) -> None:
    model, x_train, x_test, y_train, y_test = fitted
    _refused(tmp_path, r"missing \['island'\]", model, X=x_train.drop(columns=["island"]))
    _refused(tmp_path, r"not seen at fit \['colour'\]", model, X=x_train.assign(colour="x"))
    _refused(tmp_path, "must be a pandas DataFrame", model, X=x_train.to_numpy())
    on_arrays = LogisticRegression().fit(x_train[NUMERIC].fillna(0).to_numpy(), y_train)
    _refused(tmp_path, "fitted on a numpy array", on_arrays, X=x_train[NUMERIC].fillna(0))
    _refused(
        tmp_path,
        "classes the model does not know",
        model,
        X=x_train,
        eval_set=(x_test, y_test.replace("male", "m")),
    )
    _refused(tmp_path, "eval_set has", model, X=x_train, eval_set=(x_test, y_test[:5]))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(ModelSaveError, match="not an empty directory"):
        lambdaserve.save_model(model, tmp_path / "taken", name="m", X=x_train)
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_a_users_own_transformer_needs_its_type_trusted_to_save_and_to_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(USER_CODE))
    from penguin_features import BillShape

    x_train, _, y_train, _ = penguins()
    features = ColumnTransformer(
        [
            (
                "numeric",
                SimpleImputer(strategy="median"),
                make_column_selector(dtype_include="number"),
            ),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore"),
                make_column_selector(dtype_exclude="number"),
            ),
        ]
    )
    model = make_pipeline(BillShape(), features, LogisticRegression(max_iter=2000))
    model.fit(x_train.dropna(), y_train[x_train.notna().all(axis=1)])
    x = x_train.dropna()
    _refused(tmp_path, "penguin_features.BillShape", model, X=x)
    bundle = lambdaserve.save_model(
        model, tmp_path / "b", name="m", X=x, trusted=["penguin_features.BillShape"]
    )
    assert bundle.manifest.custom_types == ("penguin_features.BillShape",)
    with pytest.raises(UnsafeArtifactError, match=r"does not trust: penguin_features\.BillShape"):
        load_predictor(bundle)
    for trust in (
        ModelTrust.from_settings(types=["penguin_features.BillShape"]),
        ModelTrust.from_settings(code_dirs=[USER_CODE]),
    ):
        served = load_predictor(bundle, trust=trust).predict_outputs(
            frame_columns(bundle.manifest.features, x)
        )
        np.testing.assert_allclose(served, model.predict_proba(x), rtol=0, atol=1e-12)
    skops_file = str(bundle.file(bundle.manifest.skops_file))
    with pytest.raises(UnsafeArtifactError, match="does not declare"):
        load_skops_model(skops_file, ModelTrust.from_settings(code_dirs=[USER_CODE]), declared=())


def test_importing_lambdaserve_loads_neither_scikit_learn_nor_pandas() -> None:
    """Every Lambda function imports the package: ``save_model`` loads its stack on first use."""
    probe = "import sys, lambdaserve{}; print(sorted({{'sklearn', 'pandas'}} & set(sys.modules)))"
    for touch, expected in (("", "[]"), ("; lambdaserve.save_model", "['pandas', 'sklearn']")):
        result = subprocess.run(
            [sys.executable, "-c", probe.format(touch)], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == expected
