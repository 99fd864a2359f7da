"""The training job's steps, one at a time: cleaning, loading the channel, the estimator and its
pipeline, the metrics and the ONNX export. The job as a whole is ``test_training_job.py``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.model_selection import cross_validate as sklearn_cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from lambdaserve.datasets import churn
from lambdaserve.kernel.encoding import columns_to_matrix
from lambdaserve.kernel.errors import LambdaserveError, TrainingError
from lambdaserve.kernel.manifest import ONNX_FILE, MetricSummary
from lambdaserve.kernel.onnx_predictor import OnnxPredictor
from lambdaserve.kernel.schema import MISSING_CATEGORY, FeatureSchema, FeatureSpec
from lambdaserve.training.cleaning import CleanedData, clean
from lambdaserve.training.data_loading import load_training_data
from lambdaserve.training.estimators import build_pipeline, estimator_params, make_estimator
from lambdaserve.training.evaluation import binary_metrics, cross_validate
from lambdaserve.training.hyperparameters import TrainingConfig
from lambdaserve.training.onnx_export import export_onnx

pytestmark = pytest.mark.unit

Columns = dict[str, npt.NDArray[np.generic]]
N = 60


def _config(**values: object) -> TrainingConfig:
    return TrainingConfig.model_validate({"target": "y", **values})


def _dirty_frame() -> pd.DataFrame:
    """What ``load_training_data`` hands over from a CSV: text everywhere, a few dirty cells."""
    amount = [f"{10 + i * 0.5}" for i in range(N)]
    amount[3], amount[7], amount[11] = "NA", "null", "?"  # missing-value tokens
    amount[5] = "   "  # blank
    amount[20], amount[40] = "abc", "12,5"  # not numbers, in a column that is numeric
    ratio = [f"{(i % 7) / 10}" for i in range(N)]
    ratio[9] = "inf"
    colour = ["red" if i % 3 else "blue" for i in range(N)]
    colour[2] = "N/A"
    colour[4] = ""
    return pd.DataFrame(
        {
            "id": [f"C{i:04d}" for i in range(N)],
            "amount": amount,
            "count": [str(i % 5) for i in range(N)],
            "ratio": ratio,
            "flag": [i % 4 == 0 for i in range(N)],
            "colour": colour,
            "zip": [str(10001 + i % 3) for i in range(N)],
            "plan": ["a" if i % 2 else "b1" for i in range(N - 3)] + ["1", "2", "3"],
            "constant": ["x"] * N,
            "empty": [""] * N,
            "y": [str(i % 2) for i in range(N)],
        }
    )


@pytest.fixture(scope="module")
def dirty() -> CleanedData:
    return clean(_dirty_frame(), _config(categorical_columns=("zip",)))


# -- cleaning --------------------------------------------------------------------------------


def test_clean_turns_tokens_blanks_and_unparseable_values_into_counted_missing_values(
    dirty: CleanedData,
) -> None:
    counts = {(c.column, c.action): c.count for c in dirty.coercions}
    assert counts == {
        ("amount", "missing_token_to_missing"): 3,
        ("amount", "blank_to_missing"): 1,
        ("amount", "unparseable_to_missing"): 2,
        ("ratio", "infinite_to_missing"): 1,
        ("colour", "missing_token_to_missing"): 1,
        ("colour", "blank_to_missing"): 1,
        ("constant", "dropped_constant"): 1,
        ("empty", "dropped_constant"): 1,
        ("id", "dropped_identifier"): 1,
    }
    by_key = {(c.column, c.action): c.message for c in dirty.coercions}
    assert "2 values that are not numbers" in by_key[("amount", "unparseable_to_missing")]
    amount = dirty.columns["amount"]
    assert amount.dtype == np.float64
    assert np.isnan(amount[[3, 5, 7, 11, 20, 40]]).all()
    assert int(np.isnan(amount).sum()) == 6
    assert amount[0] == 10.0 and amount[21] == 20.5
    assert np.isnan(dirty.columns["ratio"][9])
    colour = dirty.columns["colour"]
    assert colour[2] == MISSING_CATEGORY and colour[4] == MISSING_CATEGORY
    assert colour[1] == "red" and colour[3] == "blue"


def test_clean_infers_numeric_and_categorical_dtypes_and_honours_declared_categoricals(
    dirty: CleanedData,
) -> None:
    specs = {spec.name: spec for spec in dirty.schema.features}
    assert list(specs) == ["amount", "count", "ratio", "flag", "colour", "zip", "plan"]
    assert (specs["amount"].kind, specs["amount"].dtype) == ("numeric", "float")
    assert (specs["count"].kind, specs["count"].dtype) == ("numeric", "int")
    assert (specs["flag"].kind, specs["flag"].dtype) == ("numeric", "bool")
    # integers as text, declared categorical: categories, not a number
    assert (specs["zip"].kind, specs["zip"].dtype) == ("categorical", "string")
    assert specs["zip"].categories == ("10001", "10002", "10003")
    # text that is only partly numeric (3 of 60) is categorical when not declared numeric
    assert specs["plan"].kind == "categorical" and specs["plan"].categories == (
        "1",
        "2",
        "3",
        "a",
        "b1",
    )
    assert specs["amount"].nullable and specs["amount"].missing_fraction == pytest.approx(6 / N)
    assert not specs["count"].nullable and specs["count"].missing_fraction == 0.0
    assert (specs["count"].minimum, specs["count"].maximum) == (0.0, 4.0)
    assert specs["colour"].categories == ("blue", "red")
    assert specs["colour"].missing_fraction == pytest.approx(2 / N)
    assert dirty.columns["zip"].dtype == object and dirty.columns["zip"][0] == "10001"


def test_clean_drops_listed_constant_empty_and_identifier_columns(dirty: CleanedData) -> None:
    assert dirty.dropped == ("id", "constant", "empty")  # in the frame's column order
    assert not set(dirty.dropped) & set(dirty.columns)
    listed = clean(_dirty_frame(), _config(drop=("id", "plan"), categorical_columns=("zip",)))
    assert listed.dropped[:2] == ("id", "plan")  # the listed ones first, then what cleaning found
    assert set(listed.dropped) == {"id", "plan", "constant", "empty"}
    assert "plan" not in listed.schema.names and "id" not in listed.schema.names
    assert not any(c.action == "dropped_identifier" for c in listed.coercions)


def test_clean_refuses_to_drop_what_does_not_exist_or_the_target() -> None:
    with pytest.raises(TrainingError, match=r"cannot drop columns that do not exist: \['nope'\]"):
        clean(_dirty_frame(), _config(drop=("id", "nope")))
    with pytest.raises(TrainingError, match="the target 'y' cannot also be dropped"):
        clean(_dirty_frame(), _config(drop=("y",)))


def test_a_column_declared_numeric_that_is_not_numbers_is_refused() -> None:
    with pytest.raises(TrainingError) as refused:
        clean(_dirty_frame(), _config(numeric_columns=("plan",)))
    assert str(refused.value) == (
        "column 'plan' is declared numeric but 57 of 60 present values are not numbers"
    )


def test_a_declared_numeric_column_with_a_few_bad_values_is_coerced_and_counted() -> None:
    cleaned = clean(_dirty_frame(), _config(numeric_columns=("amount",)))
    counts = {(c.column, c.action): c.count for c in cleaned.coercions}
    assert counts[("amount", "unparseable_to_missing")] == 2
    assert cleaned.schema.features[cleaned.schema.names.index("amount")].kind == "numeric"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["0", "1", "2"], "must be binary: found 3 distinct values ('0', '1', '2')"),
        (
            ["yes"],
            "must be binary: found 1 distinct value (a single class cannot be learned) ('yes')",
        ),
        (
            [str(i) for i in range(7)],
            "must be binary: found 7 distinct values ('0', '1', '2', '3', '4', ...)",
        ),
    ],
)
def test_a_target_that_is_not_binary_is_refused_with_what_was_found(
    labels: list[str], expected: str
) -> None:
    frame = _dirty_frame().assign(y=[labels[i % len(labels)] for i in range(N)])
    with pytest.raises(TrainingError) as refused:
        clean(frame, _config(task="binary"))
    assert isinstance(refused.value, LambdaserveError)
    assert str(refused.value) == f"target 'y' {expected}"


def test_a_missing_target_column_names_the_columns_there_are() -> None:
    with pytest.raises(TrainingError, match="target column 'label' not found; columns are: id, "):
        clean(_dirty_frame(), TrainingConfig(target="label"))


def test_rows_without_a_target_are_dropped_and_a_named_positive_class_is_found() -> None:
    frame = _dirty_frame().assign(y=["yes" if i % 3 == 0 else "no" for i in range(N)])
    frame.loc[[1, 2], "y"] = "NA"
    frame.loc[4, "y"] = " "
    cleaned = clean(frame, _config(drop=("id",)))
    counts = {(c.column, c.action): c.count for c in cleaned.coercions}
    assert counts[("y", "missing_token_to_missing")] == 2
    assert counts[("y", "dropped_rows_missing_target")] == 3
    assert len(cleaned.target) == N - 3
    assert all(len(column) == N - 3 for column in cleaned.columns.values())
    assert cleaned.classes == ("no", "yes") and cleaned.positive_class == "yes"
    kept = frame.drop(index=[1, 2, 4])["y"].to_numpy()
    assert (cleaned.target == (kept == "yes")).all()
    chosen = clean(frame, _config(drop=("id",), positive_class="no"))
    assert chosen.classes == ("yes", "no") and chosen.positive_class == "no"
    assert (chosen.target == 1 - cleaned.target).all()
    with pytest.raises(TrainingError, match="positive_class 'maybe' is not a target value"):
        clean(frame, _config(drop=("id",), positive_class="maybe"))


def test_too_few_examples_of_a_class_are_refused() -> None:
    frame = _dirty_frame().assign(y=["1" if i < 3 else "0" for i in range(N)])
    with pytest.raises(TrainingError, match="too little data: 60 rows with 3 positives"):
        clean(frame, _config(cv_folds=5))


def test_dirty_churn_data_cleans_into_the_documented_features() -> None:
    frame = churn.generate_churn(300, seed=1)
    cleaned = clean(frame, TrainingConfig(target=churn.TARGET, drop=(churn.ID_COLUMN,)))
    numeric = {spec.name for spec in cleaned.schema.numeric}
    categorical = {spec.name for spec in cleaned.schema.categorical}
    assert numeric == set(churn.NUMERIC_FEATURES)
    assert categorical == set(churn.CATEGORICAL_FEATURES)
    blanks = int((frame["total_charges"].str.strip() == "").sum())
    assert blanks > 0
    counts = {(c.column, c.action): c.count for c in cleaned.coercions}
    assert counts[("total_charges", "blank_to_missing")] == blanks
    assert int(np.isnan(cleaned.columns["total_charges"]).sum()) == blanks
    assert cleaned.target.sum() == frame[churn.TARGET].sum()


# -- loading the training channel ------------------------------------------------------------


def test_every_csv_in_the_channel_is_read_as_text_and_concatenated(tmp_path: Path) -> None:
    channel = tmp_path / "train"
    (channel / "part").mkdir(parents=True)
    (channel / "a.csv").write_text("x,colour,y\n1.5,red,0\nNA,,1\n")
    (channel / "part" / "b.csv").write_text("x,colour,y\n2,blue,1\n")
    (channel / "notes.txt").write_text("not data\n")
    loaded = load_training_data(channel)
    assert loaded.files == ("a.csv", "b.csv")
    assert list(loaded.frame.columns) == ["x", "colour", "y"]
    assert loaded.frame["x"].tolist()[0] == "1.5" and loaded.frame["x"].tolist()[2] == "2"
    assert loaded.frame["x"][1] == "NA"  # a token stays text: cleaning counts it
    assert pd.isna(loaded.frame["colour"][1])  # an empty field is missing
    assert len(loaded.frame) == 3

    expected = hashlib.sha256()
    for path in (channel / "a.csv", channel / "part" / "b.csv"):
        expected.update(path.name.encode() + b"\0" + path.read_bytes())
    assert loaded.fingerprint == expected.hexdigest()
    (channel / "part" / "b.csv").write_text("x,colour,y\n3,blue,1\n")
    assert load_training_data(channel).fingerprint != loaded.fingerprint


def test_a_parquet_file_keeps_its_types(tmp_path: Path) -> None:
    channel = tmp_path / "train"
    channel.mkdir()
    frame = pd.DataFrame({"x": [1.5, 2.5, np.nan], "n": [1, 2, 3], "y": [0, 1, 1]})
    frame.to_parquet(channel / "data.parquet")
    loaded = load_training_data(channel)
    assert loaded.files == ("data.parquet",)
    pd.testing.assert_frame_equal(loaded.frame, frame)
    direct = load_training_data(channel / "data.parquet")  # one file as the channel
    assert direct.fingerprint == loaded.fingerprint


def test_an_empty_or_missing_channel_is_refused(tmp_path: Path) -> None:
    channel = tmp_path / "train"
    channel.mkdir()
    with pytest.raises(TrainingError, match="no CSV or Parquet files in training channel"):
        load_training_data(channel)
    (channel / "README.md").write_text("the data is elsewhere\n")
    with pytest.raises(TrainingError, match="no CSV or Parquet files in training channel"):
        load_training_data(channel)
    with pytest.raises(TrainingError, match="does not exist"):
        load_training_data(tmp_path / "nowhere")


def test_files_that_disagree_or_hold_no_rows_are_refused(tmp_path: Path) -> None:
    channel = tmp_path / "train"
    channel.mkdir()
    (channel / "a.csv").write_text("x,y\n")
    with pytest.raises(TrainingError, match="the training data has no rows"):
        load_training_data(channel)
    (channel / "a.csv").write_text("x,y\n1,0\n")
    (channel / "b.csv").write_text("x,z\n1,0\n")
    with pytest.raises(TrainingError, match=r"b\.csv has different columns from a\.csv"):
        load_training_data(channel)


# -- estimators and the pipeline -------------------------------------------------------------

HYPERPARAMETERS = {
    "n_estimators": 7,
    "max_depth": 3,
    "learning_rate": 0.3,
    "max_iter": 11,
    "C": 0.5,
    "random_state": 5,
}


@pytest.mark.parametrize(
    ("name", "cls", "params"),
    [
        (
            "random_forest",
            RandomForestClassifier,
            {"n_estimators": 7, "max_depth": 3, "random_state": 5, "n_jobs": -1},
        ),
        (
            "hist_gradient_boosting",
            HistGradientBoostingClassifier,
            {"learning_rate": 0.3, "max_iter": 11, "max_depth": 3, "random_state": 5},
        ),
        ("logistic_regression", LogisticRegression, {"C": 0.5, "max_iter": 2000}),
    ],
)
def test_each_estimator_name_builds_its_class_with_the_hyperparameters(
    name: str, cls: type, params: dict[str, object]
) -> None:
    estimator = make_estimator(_config(estimator=name, **HYPERPARAMETERS))
    assert type(estimator) is cls
    built = estimator.get_params()
    assert {key: built[key] for key in params} == params


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("random_forest", {"n_estimators": 7, "max_depth": 3, "random_state": 5}),
        (
            "hist_gradient_boosting",
            {"learning_rate": 0.3, "max_iter": 11, "max_depth": 3, "random_state": 5},
        ),
        ("logistic_regression", {"C": 0.5}),
    ],
)
def test_estimator_params_are_the_ones_the_estimator_uses(
    name: str, expected: dict[str, object]
) -> None:
    assert estimator_params(_config(estimator=name, **HYPERPARAMETERS)) == expected


def test_max_depth_none_means_unlimited() -> None:
    forest = make_estimator(_config(max_depth=None))
    assert forest.get_params()["max_depth"] is None
    assert estimator_params(_config(max_depth=None))["max_depth"] is None


@pytest.fixture(scope="module")
def churn_data() -> CleanedData:
    frame = churn.generate_churn(240, seed=5)
    return clean(frame, TrainingConfig(target=churn.TARGET, drop=(churn.ID_COLUMN,)))


def _transformers(pipeline: Pipeline) -> dict[str, tuple[object, list[int]]]:
    features = pipeline.named_steps["features"]
    assert isinstance(features, ColumnTransformer)
    return {name: (step, list(cols)) for name, step, cols in features.transformers}


@pytest.mark.parametrize("name", ["random_forest", "hist_gradient_boosting", "logistic_regression"])
def test_the_pipeline_addresses_numeric_and_categorical_columns_by_position(
    churn_data: CleanedData, name: str
) -> None:
    schema = churn_data.schema
    pipeline = build_pipeline(schema, _config(estimator=name, n_estimators=5, max_iter=10))
    transformers = _transformers(pipeline)
    assert set(transformers) == {"numeric", "categorical"}
    numeric_step, numeric_cols = transformers["numeric"]
    assert [schema.names[i] for i in numeric_cols] == [s.name for s in schema.numeric]
    assert [schema.names[i] for i in transformers["categorical"][1]] == [
        s.name for s in schema.categorical
    ]
    assert isinstance(numeric_step, Pipeline)
    scaled = any(isinstance(step, StandardScaler) for _, step in numeric_step.steps)
    assert scaled == (name == "logistic_regression")
    assert type(pipeline.named_steps["classifier"]) is type(make_estimator(_config(estimator=name)))


def test_the_fitted_pipeline_imputes_numbers_and_ignores_unseen_categories(
    churn_data: CleanedData,
) -> None:
    schema = churn_data.schema
    pipeline = build_pipeline(schema, _config(n_estimators=5, max_depth=4))
    pipeline.fit(columns_to_matrix(schema, churn_data.columns), churn_data.target)

    new = {name: column[:4].copy() for name, column in churn_data.columns.items()}
    new["contract"] = np.array(["lifetime", "one-year", "lifetime", "two-year"], dtype=object)
    new["tenure_months"] = np.array([np.nan, 1.0, 2.0, np.nan])
    matrix = columns_to_matrix(schema, new)
    probabilities = pipeline.predict_proba(matrix)
    assert probabilities.shape == (4, 2)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)

    encoded = pipeline.named_steps["features"].transform(matrix)
    numeric_names = [s.name for s in schema.numeric]
    tenure = encoded[:, numeric_names.index("tenure_months")]
    median = float(np.nanmedian(churn_data.columns["tenure_months"]))
    assert tenure.tolist() == pytest.approx([median, 1.0, 2.0, median])
    # one-hot block of "contract": its categories follow the numeric columns, in schema order
    offset = len(numeric_names)
    for spec in schema.categorical:
        if spec.name == "contract":
            break
        offset += len(set(churn_data.columns[spec.name]))
    contract_block = encoded[:, offset : offset + len(set(churn_data.columns["contract"]))]
    assert contract_block.sum(axis=1).tolist() == [0.0, 1.0, 0.0, 1.0]  # unseen: all zeros


def test_a_schema_with_one_kind_of_column_builds_one_transformer() -> None:
    numeric_only = FeatureSchema(
        features=(
            FeatureSpec(name="a", kind="numeric", dtype="float", nullable=True),
            FeatureSpec(name="b", kind="numeric", dtype="int", nullable=False),
        )
    )
    categorical_only = FeatureSchema(
        features=(FeatureSpec(name="c", kind="categorical", dtype="string", nullable=False),)
    )
    assert {k: v[1] for k, v in _transformers(build_pipeline(numeric_only, _config())).items()} == {
        "numeric": [0, 1]
    }
    assert {
        k: v[1] for k, v in _transformers(build_pipeline(categorical_only, _config())).items()
    } == {"categorical": [0]}


# -- metrics ---------------------------------------------------------------------------------

Y_TRUE = np.array([0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 0], dtype=np.int64)
SCORES = np.array([0.1, 0.4, 0.35, 0.8, 0.55, 0.9, 0.45, 0.2, 0.6, 0.05, 0.7, 0.3])


@pytest.mark.parametrize("threshold", [0.5, 0.4])
def test_binary_metrics_agree_with_scikit_learn(threshold: float) -> None:
    got = binary_metrics(Y_TRUE, SCORES, threshold=threshold)
    predicted = np.greater_equal(SCORES, threshold).astype(np.int64)
    assert got == pytest.approx(
        {
            "roc_auc": metrics.roc_auc_score(Y_TRUE, SCORES),
            "accuracy": metrics.accuracy_score(Y_TRUE, predicted),
            "precision": metrics.precision_score(Y_TRUE, predicted),
            "recall": metrics.recall_score(Y_TRUE, predicted),
            "f1": metrics.f1_score(Y_TRUE, predicted),
            "log_loss": metrics.log_loss(Y_TRUE, SCORES),
            "brier": metrics.brier_score_loss(Y_TRUE, SCORES),
        },
        rel=1e-12,
    )
    assert all(type(value) is float for value in got.values())


def test_the_threshold_decides_the_predicted_class() -> None:
    at_half = binary_metrics(Y_TRUE, SCORES)
    at_four_tenths = binary_metrics(Y_TRUE, SCORES, threshold=0.4)
    # at 0.4, 0.45 (a positive) and 0.4 (a negative) become predicted positives as well
    assert (at_half["recall"], at_half["precision"]) == pytest.approx((4 / 6, 4 / 5))
    assert (at_four_tenths["recall"], at_four_tenths["precision"]) == pytest.approx((5 / 6, 5 / 7))
    assert at_half["roc_auc"] == at_four_tenths["roc_auc"]  # threshold-free


def test_certain_wrong_scores_give_a_finite_log_loss_and_no_precision_is_zero() -> None:
    y = np.array([0, 1, 0, 1], dtype=np.int64)
    scores = np.array([1.0, 0.0, 0.0, 0.2])
    got = binary_metrics(y, scores)
    assert np.isfinite(got["log_loss"]) and got["log_loss"] > 10
    assert got["log_loss"] == pytest.approx(
        metrics.log_loss(y, np.clip(scores, 1e-15, 1 - 1e-15)), rel=1e-12
    )
    nothing_positive = binary_metrics(y, np.array([0.1, 0.2, 0.3, 0.4]))
    assert nothing_positive["precision"] == 0.0 and nothing_positive["f1"] == 0.0


def test_cross_validate_matches_scikit_learn_fold_by_fold(churn_data: CleanedData) -> None:
    schema = churn_data.schema
    pipeline = build_pipeline(schema, _config(estimator="logistic_regression"))
    matrix = columns_to_matrix(schema, churn_data.columns)
    y = churn_data.target
    summary = cross_validate(pipeline, matrix, y, folds=3, random_state=7)

    assert set(summary) == set(binary_metrics(Y_TRUE, SCORES))
    assert all(isinstance(value, MetricSummary) for value in summary.values())
    with pytest.raises(NotFittedError):
        check_is_fitted(pipeline)  # each fold fits a clone; the pipeline given stays unfitted

    reference = sklearn_cross_validate(
        pipeline,
        matrix,
        y,
        cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=7),
        scoring={
            "roc_auc": "roc_auc",
            "accuracy": "accuracy",
            "precision": "precision",
            "recall": "recall",
            "f1": "f1",
            "log_loss": "neg_log_loss",
            "brier": "neg_brier_score",
        },
    )
    for name, result in summary.items():
        folds = reference[f"test_{name}"]
        folds = -folds if name in ("log_loss", "brier") else folds
        assert len(folds) == 3
        assert result.mean == pytest.approx(float(np.mean(folds)), rel=1e-9), name
        assert result.std == pytest.approx(float(np.std(folds)), rel=1e-6, abs=1e-12), name
    assert summary["roc_auc"].std > 0.0  # three different folds, three different scores


# -- ONNX export -----------------------------------------------------------------------------


def _fitted(data: CleanedData, **hps: object) -> tuple[Pipeline, Columns, np.ndarray]:
    """A pipeline fitted on the first 180 rows, with the other rows and their probabilities."""
    schema = data.schema
    train = {name: column[:180] for name, column in data.columns.items()}
    holdout = {name: column[180:] for name, column in data.columns.items()}
    pipeline = build_pipeline(schema, _config(**hps))
    pipeline.fit(columns_to_matrix(schema, train), data.target[:180])
    probabilities = pipeline.predict_proba(columns_to_matrix(schema, holdout)).astype(np.float64)
    return pipeline, holdout, probabilities


def test_a_random_forest_exports_to_onnx_with_scikit_learn_probabilities(
    churn_data: CleanedData, tmp_path: Path
) -> None:
    pipeline, holdout, scores = _fitted(churn_data, n_estimators=8, max_depth=5)
    export = export_onnx(pipeline, churn_data.schema, holdout, scores, 1e-5, tmp_path)
    assert export.status == "ok" and export.reason is None
    assert export.file == ONNX_FILE and (tmp_path / ONNX_FILE).is_file()
    assert export.tolerance == 1e-5
    assert export.max_abs_diff is not None and 0.0 <= export.max_abs_diff <= 1e-5
    assert isinstance(export.opset, int) and export.opset >= 1
    onnx_scores = OnnxPredictor(tmp_path / ONNX_FILE, churn_data.schema).predict_proba(holdout)
    assert onnx_scores.shape == scores[:, 1].shape
    np.testing.assert_allclose(onnx_scores, scores[:, 1], atol=1e-5, rtol=0)


def test_onnx_that_disagrees_with_scikit_learn_is_not_written(
    churn_data: CleanedData, tmp_path: Path
) -> None:
    pipeline, holdout, scores = _fitted(churn_data, n_estimators=8, max_depth=5)
    export = export_onnx(pipeline, churn_data.schema, holdout, scores + 0.01, 1e-5, tmp_path)
    assert export.status == "parity_failed"
    assert export.max_abs_diff == pytest.approx(0.01, abs=1e-4)
    assert export.reason is not None and "exceeds" in export.reason
    assert not (tmp_path / ONNX_FILE).exists()


def test_a_model_skl2onnx_cannot_convert_is_reported_not_raised(
    churn_data: CleanedData, tmp_path: Path
) -> None:
    pipeline, holdout, scores = _fitted(churn_data, estimator="hist_gradient_boosting", max_iter=5)
    export = export_onnx(pipeline, churn_data.schema, holdout, scores, 1e-5, tmp_path)
    assert export.status == "unsupported"
    assert export.reason and ":" in export.reason and len(export.reason) < 250
    assert export.file is None and export.max_abs_diff is None
    assert list(tmp_path.iterdir()) == []
