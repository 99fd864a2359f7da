"""Training per task (issue 13): binary and multiclass classification and regression, on public
datasets through the SageMaker-contract job, the ``task=auto`` rule and its overrides, the
refusals (each a reason in the failure file, never a bundle), and the metrics, estimators, ONNX
parity and reference profile of each task."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from sklearn import datasets, metrics
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.model_selection import cross_validate as sklearn_cross_validate
from sklearn.preprocessing import StandardScaler

from lambdaserve.kernel.bundle import VerifiedBundle, verify_bundle
from lambdaserve.kernel.encoding import columns_to_matrix
from lambdaserve.kernel.errors import TrainingError
from lambdaserve.kernel.manifest import ONNX_FILE, Task
from lambdaserve.kernel.predictors import load_predictor
from lambdaserve.kernel.reference import SCORE_EDGES, ReferenceProfile, quantile_edges
from lambdaserve.training.cleaning import CleanedData, clean
from lambdaserve.training.estimators import build_pipeline, estimator_params, make_estimator
from lambdaserve.training.evaluation import cross_validate, model_outputs
from lambdaserve.training.hyperparameters import TrainingConfig
from lambdaserve.training.job import main
from lambdaserve.training.metrics import (
    binary_metrics,
    multiclass_metrics,
    regression_metrics,
    task_metrics,
)
from lambdaserve.training.onnx_export import export_onnx, parity_tolerance
from tests.support.bundles import sagemaker_environment, train_bundle

pytestmark = pytest.mark.unit

Columns = dict[str, npt.NDArray[np.generic]]
BINARY = {"roc_auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier"}
MULTICLASS = {"accuracy", "macro_f1", "weighted_f1", "log_loss", "recall_0", "recall_1", "recall_2"}
REGRESSION = {"rmse", "mae", "r2", "residual_p05", "residual_p50", "residual_p95"}

#: dataset -> (the task auto finds, the linear model for it, a metric, its floor)
DATASETS: dict[str, tuple[Task, str, str, float]] = {
    "iris": ("multiclass_classification", "logistic_regression", "accuracy", 0.8),
    "wine": ("multiclass_classification", "logistic_regression", "accuracy", 0.8),
    "diabetes": ("regression", "ridge", "r2", 0.2),
    "breast_cancer": ("binary_classification", "logistic_regression", "roc_auc", 0.9),
}
CASES = [(d, e) for d, (_, linear, _, _) in DATASETS.items() for e in ("random_forest", linear)]


def _dataset(name: str) -> pd.DataFrame:
    frame: pd.DataFrame = getattr(datasets, f"load_{name}")(as_frame=True).frame
    return frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], VerifiedBundle]:
    """Each (dataset, estimator) bundle trained once for this module, ``task`` left to auto."""
    bundles: dict[tuple[str, str], VerifiedBundle] = {}

    def get(dataset: str, estimator: str) -> VerifiedBundle:
        if (dataset, estimator) not in bundles:
            bundles[dataset, estimator] = train_bundle(
                tmp_path_factory.mktemp(f"{dataset}-{estimator}"),
                _dataset(dataset),
                target="target",
                estimator=estimator,
                model_name=dataset.replace("_", "-"),
                n_estimators=20,
                max_depth=4,
            )
        return bundles[dataset, estimator]

    return get


def _columns(bundle: VerifiedBundle, frame: pd.DataFrame) -> Columns:
    return {s.name: frame[s.name].to_numpy(np.float64) for s in bundle.manifest.features.features}


# -- public datasets through the job ---------------------------------------------------------


@pytest.mark.parametrize(("dataset", "estimator"), CASES)
def test_each_dataset_trains_as_the_task_auto_finds(
    trained: Callable[[str, str], VerifiedBundle], dataset: str, estimator: str
) -> None:
    bundle = trained(dataset, estimator)
    manifest = verify_bundle(bundle.path).manifest  # every hash, and the manifest's contract
    task, _, metric, floor = DATASETS[dataset]
    target = _dataset(dataset)["target"]
    assert manifest.task == task and manifest.estimator.name == estimator
    if task == "regression":
        assert manifest.classes == () and manifest.positive_class is None
        assert manifest.target_range is not None and manifest.target_range.dtype == "int64"
        assert (manifest.target_range.minimum, manifest.target_range.maximum) == (25.0, 346.0)
        assert manifest.target_range.mean == pytest.approx(target.mean())
        assert manifest.target_range.std == pytest.approx(target.std(ddof=0))
        assert manifest.data.positive_rate is None
        assert set(manifest.metrics) == REGRESSION
    elif task == "multiclass_classification":
        assert manifest.classes == (0, 1, 2) and manifest.positive_class is None
        assert manifest.target_range is None and manifest.data.positive_rate is None
        assert set(manifest.metrics) == MULTICLASS
    else:
        assert manifest.classes == (0, 1) and manifest.positive_class == 1
        assert manifest.data.positive_rate == pytest.approx(target.mean())
        assert set(manifest.metrics) == BINARY
    assert set(manifest.cv_metrics) == set(manifest.metrics)
    assert manifest.metrics[metric] > floor, manifest.metrics
    assert manifest.cv_metrics[metric].mean > floor, manifest.cv_metrics
    assert all(np.isfinite(value) for value in manifest.metrics.values())
    assert manifest.data.rows == len(target)


@pytest.mark.parametrize(("dataset", "estimator"), CASES)
def test_onnx_serves_what_scikit_learn_serves(
    trained: Callable[[str, str], VerifiedBundle], dataset: str, estimator: str
) -> None:
    bundle = trained(dataset, estimator)
    manifest, export = bundle.manifest, bundle.manifest.onnx
    assert export.status == "ok" and (bundle.path / ONNX_FILE).is_file(), export.reason
    assert export.max_abs_diff is not None and export.tolerance is not None
    if manifest.target_range is not None:  # regression: relative to the target's scale
        assert export.tolerance == pytest.approx(1e-5 * manifest.target_range.std)
    else:
        assert export.tolerance == 1e-5
    assert export.max_abs_diff <= export.tolerance
    columns = _columns(bundle, _dataset(dataset))
    rows = len(_dataset(dataset))
    onnx_outputs = load_predictor(bundle, "onnx").predict_outputs(columns)
    sklearn_outputs = load_predictor(bundle, "sklearn").predict_outputs(columns)
    expected_shape = (rows, len(manifest.classes)) if manifest.classes else (rows,)
    assert onnx_outputs.shape == sklearn_outputs.shape == expected_shape
    assert float(np.max(np.abs(onnx_outputs - sklearn_outputs))) <= export.tolerance
    if manifest.classes:
        np.testing.assert_allclose(onnx_outputs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_the_reference_keeps_the_task_output_distribution(
    trained: Callable[[str, str], VerifiedBundle], dataset: str
) -> None:
    bundle = trained(dataset, "random_forest")
    manifest = bundle.manifest
    document = json.loads(bundle.file("reference.json").read_text())
    reference = ReferenceProfile.model_validate(document)
    holdout = manifest.data.holdout_rows
    assert reference.rows == manifest.data.train_rows
    if manifest.task == "multiclass_classification":
        assert "score" not in document and reference.score is None
        assert reference.predicted_classes is not None
        assert set(reference.predicted_classes) == {"0", "1", "2"}
        assert sum(reference.predicted_classes.values()) == holdout
        assert min(reference.predicted_classes.values()) > 0  # every class is predicted somewhere
        return
    assert "predicted_classes" not in document and reference.score is not None
    assert sum(reference.score.counts) == holdout
    assert len(reference.score.counts) == len(reference.score.edges) + 1
    if manifest.task == "binary_classification":
        assert reference.score.edges == SCORE_EDGES
        return
    assert manifest.target_range is not None
    edges = reference.score.edges  # the holdout predictions' deciles
    frame = _dataset(dataset)
    _, holdout_rows = train_test_split(np.arange(len(frame)), test_size=0.2, random_state=0)
    holdout_frame = frame.iloc[holdout_rows]
    served = load_predictor(bundle, "sklearn").predict_outputs(_columns(bundle, holdout_frame))
    assert edges == pytest.approx(quantile_edges(served))
    assert len(edges) == 9 and list(edges) == sorted(set(edges))
    assert manifest.target_range.minimum < edges[0] < edges[-1] < manifest.target_range.maximum
    assert max(reference.score.counts) - min(reference.score.counts) <= 2


def test_an_old_binary_reference_still_loads() -> None:
    old = {
        "rows": 3,
        "features": {"x": {"kind": "numeric", "edges": [1.0], "counts": [2, 1], "missing": 0}},
        "score": {"edges": list(SCORE_EDGES), "counts": [3, 0, 0, 0, 0, 0, 0, 0, 0, 0]},
    }
    reference = ReferenceProfile.model_validate_json(json.dumps(old))
    assert reference.score is not None and reference.score.counts[0] == 3
    assert reference.predicted_classes is None


# -- the auto rule and explicit tasks --------------------------------------------------------

N = 60


def _frame(target: Sequence[object]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=N), "y": [target[i % len(target)] for i in range(N)]})


def _config(**hps: object) -> TrainingConfig:
    return TrainingConfig.model_validate({"target": "y", **hps})


def _clean(target: Sequence[object], **hps: object) -> CleanedData:
    return clean(_frame(target), _config(**hps))


@pytest.mark.parametrize(
    ("target", "task"),
    [
        (["no", "yes"], "binary_classification"),
        ([True, False], "binary_classification"),
        (["a", "b", "c"], "multiclass_classification"),
        (["1", "2", "x"], "multiclass_classification"),  # text among numbers: not numeric
        (list(range(20)), "multiclass_classification"),  # 20 integers: at most 20 classes
        ([float(i) for i in range(20)], "multiclass_classification"),  # integer-valued floats
        ([f"{i}.0" for i in range(3)], "multiclass_classification"),  # integers as text
        (list(range(21)), "regression"),  # 21 distinct integers
        ([0.5, 1.0, 2.0], "regression"),  # not all integers
        (["0.5", " 1.5 ", "NA", "2"], "regression"),  # numbers as text; a token is missing
    ],
)
def test_auto_decides_the_task_from_the_target(target: list[object], task: Task) -> None:
    cleaned = _clean(target, cv_folds=2)
    assert cleaned.task == task
    if task == "regression":
        assert cleaned.target.dtype == np.float64 and cleaned.classes == ()
        assert cleaned.target_range is not None and cleaned.positive_class is None
    else:
        assert cleaned.target.dtype == np.int64 and cleaned.target_range is None
        assert cleaned.classes == tuple(sorted(cleaned.classes, key=str))
        assert set(cleaned.target.tolist()) == set(range(len(cleaned.classes)))


def test_multiclass_classes_are_sorted_by_text_and_the_target_indexes_them() -> None:
    cleaned = _clean(["b", "c", "a", 10, 2])
    assert cleaned.classes == (10, 2, "a", "b", "c")
    assert cleaned.target[:5].tolist() == [3, 4, 2, 0, 1]
    assert cleaned.positive_class is None


def test_a_regression_target_range_keeps_dtype_and_statistics() -> None:
    floats = _clean([0.5, 1.0, 2.5])
    values = np.array([0.5, 1.0, 2.5] * (N // 3))
    assert floats.target_range is not None and floats.target_range.dtype == "float64"
    assert (floats.target_range.minimum, floats.target_range.maximum) == (0.5, 2.5)
    assert floats.target_range.mean == pytest.approx(values.mean())
    assert floats.target_range.std == pytest.approx(values.std())
    np.testing.assert_array_equal(floats.target, values)
    integers = _clean(list(range(30)), task="regression")
    assert integers.target_range is not None and integers.target_range.dtype == "int64"
    assert integers.target.dtype == np.float64


@pytest.mark.parametrize(
    ("target", "hps", "task"),
    [
        (list(range(3)), {"task": "regression"}, "regression"),
        ([0.5, 1.5], {"task": "binary"}, "binary_classification"),
        ([0.5, 1.5, 2.5], {"task": "multiclass"}, "multiclass_classification"),
        (["no", "yes"], {"task": "auto"}, "binary_classification"),
    ],
)
def test_an_explicit_task_overrides_the_rule(
    target: list[object], hps: dict[str, object], task: Task
) -> None:
    assert _clean(target, **hps).task == task


# -- refusals --------------------------------------------------------------------------------

REFUSALS: list[tuple[str, Sequence[object], dict[str, object], str]] = [
    (
        "single class",
        ["yes"],
        {},
        "target 'y' has a single class ('yes'): a single class cannot be learned",
    ),
    (
        "rare class",
        ["a", "b"] * 29 + ["c", "c"],
        {"cv_folds": 3},
        "too few examples of a class: target 'y' needs at least 3 rows of every class "
        "(cv_folds 3); class 'c' has 2 rows",
    ),
    (
        "non-finite regression target",
        [0.5, 1.5, 2.5, float("inf"), 3.5, float("-inf")] + [4.5] * 24,
        {},
        "target 'y' has 4 infinite values: a regression target must be finite",
    ),
    (
        "binary with three classes",
        ["a", "b", "c"],
        {"task": "binary"},
        "target 'y' must be binary: found 3 distinct values ('a', 'b', 'c')",
    ),
    (
        "multiclass with two classes",
        ["a", "b"],
        {"task": "multiclass"},
        "target 'y' has 2 distinct values ('a', 'b'): multiclass classification needs at least 3",
    ),
    (
        "regression on text",
        ["1.5", "2.5", "high"],
        {"task": "regression"},
        "task regression needs a numeric target: 20 of 60 values of 'y' are not numbers ('high')",
    ),
    (
        "ridge on classification",
        ["a", "b", "c"],
        {"estimator": "ridge"},
        "estimator 'ridge' is a regressor but the target is a multiclass classification task",
    ),
    (
        "logistic regression on regression",
        [0.5, 1.5, 2.5],
        {"estimator": "logistic_regression"},
        "estimator 'logistic_regression' is a classifier but the target is a regression task",
    ),
    (
        "positive class of a multiclass target",
        ["a", "b", "c"],
        {"positive_class": "a"},
        "positive_class applies to binary classification only; target 'y' is a multiclass "
        "classification task",
    ),
    ("constant regression target", [2.5], {}, "target 'y' is constant (2.5): nothing to learn"),
]


def _run_job(root: Path, frame: pd.DataFrame, **hps: object) -> int:
    hyperparameters = {"target": "y", "cv_folds": 2, "n_estimators": 5, **hps}
    return main([], sagemaker_environment(root, frame, hyperparameters))


@pytest.mark.parametrize(
    ("target", "hps", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_the_job_refuses_with_the_reason_in_the_failure_file_and_no_bundle(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    target: list[object],
    hps: dict[str, object],
    message: str,
) -> None:
    code = _run_job(tmp_path, _frame(target), **hps)
    log = capsys.readouterr().err
    assert code == 1, log
    assert message in (tmp_path / "output" / "failure").read_text()
    assert "Traceback" not in log
    model_dir = tmp_path / "model"
    assert not model_dir.exists() or not any(model_dir.iterdir())
    assert not (tmp_path / "output" / "data" / "metrics.json").exists()


@pytest.mark.parametrize(
    ("target", "hps", "message"),
    [r[1:] for r in REFUSALS if "estimator" not in r[2]],
    ids=[r[0] for r in REFUSALS if "estimator" not in r[2]],
)
def test_cleaning_raises_the_training_error_itself(
    target: Sequence[object], hps: dict[str, object], message: str
) -> None:
    with pytest.raises(TrainingError, match=re.escape(message)):
        _clean(target, **{"cv_folds": 2, **hps})


def test_classes_that_are_one_json_key_are_refused() -> None:
    frame = _frame([True, "true", "other"]).astype({"y": object})
    with pytest.raises(
        TrainingError, match="classes that are the same JSON key: \\('True', 'true'\\)"
    ):
        clean(frame, TrainingConfig(target="y", cv_folds=2))


def test_a_target_with_no_values_is_refused() -> None:
    with pytest.raises(TrainingError, match="target 'y' has no values"):
        _clean(["NA", ""])


# -- estimators per task ---------------------------------------------------------------------

HYPERPARAMETERS = {"n_estimators": 7, "max_depth": 3, "learning_rate": 0.3, "max_iter": 11}


@pytest.mark.parametrize(
    ("name", "task", "cls"),
    [
        ("random_forest", "regression", RandomForestRegressor),
        ("hist_gradient_boosting", "regression", HistGradientBoostingRegressor),
        ("ridge", "regression", Ridge),
        ("random_forest", "multiclass_classification", RandomForestClassifier),
        ("hist_gradient_boosting", "multiclass_classification", HistGradientBoostingClassifier),
        ("logistic_regression", "multiclass_classification", LogisticRegression),
    ],
)
def test_each_estimator_name_builds_the_estimator_of_the_task(
    name: str, task: Task, cls: type
) -> None:
    config = _config(estimator=name, alpha=0.25, **HYPERPARAMETERS)
    estimator = make_estimator(config, task)
    assert type(estimator) is cls
    built = estimator.get_params()
    assert {key: built[key] for key in estimator_params(config)} == estimator_params(config)
    if name == "ridge":
        assert estimator_params(config) == {"alpha": 0.25}


def test_the_regression_pipeline_standardizes_for_ridge_only() -> None:
    data = _clean([0.5, 1.0, 2.5])
    for name, scaled in (("ridge", True), ("random_forest", False)):
        pipeline = build_pipeline(data.schema, _config(estimator=name), data.task)
        assert list(pipeline.named_steps) == ["features", "regressor"]
        numeric = pipeline.named_steps["features"].transformers[0][1]
        assert any(isinstance(step, StandardScaler) for _, step in numeric.steps) == scaled


@pytest.mark.parametrize(
    ("name", "task", "message"),
    [
        ("ridge", "binary_classification", "'ridge' is a regressor"),
        ("logistic_regression", "regression", "'logistic_regression' is a classifier"),
    ],
)
def test_a_linear_model_of_the_wrong_kind_is_refused(name: str, task: Task, message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        make_estimator(_config(estimator=name), task)


# -- metrics: golden values against scikit-learn's own functions -----------------------------

Y_CLASSES = np.array([0, 1, 2, 2, 1, 0, 2], dtype=np.int64)
PROBABILITIES = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.1, 0.6, 0.3],
        [0.2, 0.2, 0.6],
        [0.1, 0.5, 0.4],  # a 2 predicted as 1
        [0.3, 0.4, 0.3],
        [0.4, 0.5, 0.1],  # a 0 predicted as 1
        [0.0, 0.1, 0.9],
    ]
)
CLASSES = ("setosa", "versicolor", True)


def test_multiclass_metrics_agree_with_scikit_learn() -> None:
    got = multiclass_metrics(Y_CLASSES, PROBABILITIES, CLASSES)
    predicted = PROBABILITIES.argmax(axis=1)
    recalls = metrics.recall_score(Y_CLASSES, predicted, average=None)
    assert got == pytest.approx(
        {
            "accuracy": 5 / 7,
            "macro_f1": metrics.f1_score(Y_CLASSES, predicted, average="macro"),
            "weighted_f1": metrics.f1_score(Y_CLASSES, predicted, average="weighted"),
            "log_loss": metrics.log_loss(Y_CLASSES, PROBABILITIES),
            "recall_setosa": 0.5,
            "recall_versicolor": 1.0,
            "recall_true": 2 / 3,
        },
        rel=1e-12,
    )
    assert (got["recall_setosa"], got["recall_true"]) == pytest.approx(tuple(recalls[[0, 2]]))
    assert all(type(value) is float for value in got.values())


def test_a_class_absent_from_a_fold_still_has_its_metrics() -> None:
    y = np.array([0, 1, 0, 1], dtype=np.int64)  # class 2 never observed
    probabilities = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.1, 0.8, 0.1]])
    got = multiclass_metrics(y, probabilities, (0, 1, 2))
    assert got["recall_2"] == 0.0 and got["accuracy"] == 0.75
    assert got["log_loss"] == pytest.approx(
        metrics.log_loss(y, probabilities, labels=[0, 1, 2]), rel=1e-12
    )


def test_regression_metrics_golden_values() -> None:
    y = np.array([3.0, -0.5, 2.0, 7.0])
    predicted = np.array([2.5, 0.0, 2.0, 8.0])  # residuals 0.5, -0.5, 0, -1
    got = regression_metrics(y, predicted)
    assert got == pytest.approx(
        {
            "rmse": np.sqrt(0.375),
            "mae": 0.5,
            "r2": 0.9486081370449679,
            "residual_p05": -0.925,
            "residual_p50": -0.25,
            "residual_p95": 0.425,
        },
        rel=1e-12,
    )
    assert got["rmse"] == pytest.approx(metrics.root_mean_squared_error(y, predicted), rel=1e-12)
    assert got["r2"] == pytest.approx(metrics.r2_score(y, predicted), rel=1e-12)


def test_task_metrics_dispatches_on_the_task() -> None:
    y = np.array([0, 1, 1, 0, 1], dtype=np.int64)
    positive = np.array([0.2, 0.7, 0.4, 0.1, 0.9])
    two_columns = np.column_stack([1 - positive, positive])
    assert task_metrics("binary_classification", y, two_columns) == binary_metrics(y, positive)
    assert task_metrics("binary_classification", y, positive) == binary_metrics(y, positive)
    assert task_metrics(
        "multiclass_classification", Y_CLASSES, PROBABILITIES, CLASSES
    ) == multiclass_metrics(Y_CLASSES, PROBABILITIES, CLASSES)
    numbers = np.array([1.0, 2.0, 4.0])
    assert task_metrics("regression", numbers, numbers + 0.5) == regression_metrics(
        numbers, numbers + 0.5
    )


# -- cross-validation and outputs per task ---------------------------------------------------


def _iris() -> CleanedData:
    return clean(_dataset("iris"), TrainingConfig(target="target"))


def test_multiclass_cross_validation_is_stratified_and_matches_scikit_learn() -> None:
    data = _iris()
    config = TrainingConfig(target="target", estimator="logistic_regression")
    pipeline = build_pipeline(data.schema, config, data.task)
    matrix = columns_to_matrix(data.schema, data.columns)
    summary = cross_validate(
        pipeline, matrix, data.target, 3, 7, task=data.task, classes=data.classes
    )
    assert set(summary) == MULTICLASS
    reference = sklearn_cross_validate(
        pipeline,
        matrix,
        data.target,
        cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=7),
        scoring={"accuracy": "accuracy", "macro_f1": "f1_macro", "log_loss": "neg_log_loss"},
    )
    for name, sign in (("accuracy", 1), ("macro_f1", 1), ("log_loss", -1)):
        folds = sign * reference[f"test_{name}"]
        assert summary[name].mean == pytest.approx(float(np.mean(folds)), rel=1e-9), name
        assert summary[name].std == pytest.approx(float(np.std(folds)), rel=1e-6, abs=1e-12)


def test_regression_cross_validation_uses_kfold_and_matches_scikit_learn() -> None:
    frame = _dataset("diabetes")
    data = clean(frame, TrainingConfig(target="target"))
    pipeline = build_pipeline(
        data.schema, TrainingConfig(target="target", estimator="ridge"), data.task
    )
    matrix = columns_to_matrix(data.schema, data.columns)
    summary = cross_validate(pipeline, matrix, data.target, 4, 3, task="regression")
    assert set(summary) == REGRESSION
    reference = sklearn_cross_validate(
        pipeline,
        matrix,
        data.target,
        cv=KFold(n_splits=4, shuffle=True, random_state=3),
        scoring={
            "r2": "r2",
            "mae": "neg_mean_absolute_error",
            "rmse": "neg_root_mean_squared_error",
        },
    )
    for name, sign in (("r2", 1), ("mae", -1), ("rmse", -1)):
        assert summary[name].mean == pytest.approx(
            float(np.mean(sign * reference[f"test_{name}"])), rel=1e-9
        ), name


def test_model_outputs_keep_a_column_for_a_class_the_fit_never_saw() -> None:
    data = _iris()
    matrix = columns_to_matrix(data.schema, data.columns)
    seen = data.target != 1
    pipeline = build_pipeline(data.schema, TrainingConfig(target="target"), data.task)
    pipeline.fit(matrix[seen], data.target[seen])
    outputs = model_outputs(pipeline, matrix[:5], data.task, n_classes=3)
    assert outputs.shape == (5, 3)
    assert (outputs[:, 1] == 0.0).all()
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0)


# -- ONNX export of a regressor --------------------------------------------------------------


def test_the_regression_parity_tolerance_follows_the_target_scale() -> None:
    assert parity_tolerance(1e-5, "multiclass_classification", 80.0) == 1e-5
    assert parity_tolerance(1e-5, "regression", 80.0) == pytest.approx(8e-4)
    assert parity_tolerance(1e-5, "regression", 0.0) == pytest.approx(1e-17)


def test_a_regressor_exports_and_a_prediction_off_by_more_than_the_tolerance_is_refused(
    tmp_path: Path,
) -> None:
    data = clean(_dataset("diabetes"), TrainingConfig(target="target"))
    schema = data.schema
    train = {name: column[:350] for name, column in data.columns.items()}
    holdout = {name: column[350:] for name, column in data.columns.items()}
    pipeline = build_pipeline(schema, TrainingConfig(target="target", n_estimators=5), data.task)
    pipeline.fit(columns_to_matrix(schema, train), data.target[:350])
    predictions = model_outputs(pipeline, columns_to_matrix(schema, holdout), data.task)
    assert data.target_range is not None
    tolerance = parity_tolerance(1e-5, data.task, data.target_range.std)
    refused = export_onnx(
        pipeline, schema, holdout, predictions + 0.01, tolerance, tmp_path, task=data.task
    )
    assert refused.status == "parity_failed" and refused.tolerance == tolerance
    assert refused.reason is not None and "max prediction difference" in refused.reason
    assert not (tmp_path / ONNX_FILE).exists()
    export = export_onnx(
        pipeline, schema, holdout, predictions, tolerance, tmp_path, task=data.task
    )
    assert export.status == "ok" and export.tolerance == tolerance
    assert export.max_abs_diff is not None and export.max_abs_diff <= tolerance
    assert (tmp_path / ONNX_FILE).is_file()


# -- lambdaserve train --task ----------------------------------------------------------------


@pytest.mark.parametrize(("argv", "task"), [([], "auto"), (["--task", "regression"], "regression")])
def test_the_cli_passes_the_task_as_a_hyperparameter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], task: str
) -> None:
    import typer
    from typer.testing import CliRunner

    from lambdaserve.cli import train_command

    received: dict[str, object] = {}

    def train_model(
        backend: object, data: Path, hyperparameters: dict[str, object], **_: object
    ) -> NoReturn:
        received.update(hyperparameters)
        raise TrainingError("stopped here")

    monkeypatch.setattr(train_command, "train_model", train_model)
    app = typer.Typer()
    app.command()(train_command.train)
    data = tmp_path / "data.csv"
    data.write_text("x,y\n1,2\n")
    result = CliRunner().invoke(
        app, ["--data", str(data), "--target", "y", "--store", str(tmp_path / "s"), *argv]
    )
    assert result.exit_code == 1 and "stopped here" in result.output
    assert received["task"] == task and received["target"] == "y"
