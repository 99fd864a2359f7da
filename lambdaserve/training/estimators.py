"""The scikit-learn pipeline: column typing, imputation, encoding and the chosen estimator.

The pipeline is fitted on the object matrix ``lambdaserve.kernel.encoding.columns_to_matrix``
builds, with columns addressed by position, so serving needs numpy only (no pandas), and
skl2onnx can export it with one named input per feature.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lambdaserve.kernel.errors import TrainingError
from lambdaserve.kernel.manifest import Task
from lambdaserve.kernel.schema import FeatureSchema
from lambdaserve.training.hyperparameters import TrainingConfig

#: The linear models: their numeric inputs are standardized.
LINEAR = frozenset({"logistic_regression", "ridge"})


def check_estimator(estimator: str, task: Task) -> None:
    """Refuse a linear model of the wrong kind: logistic regression classifies, ridge regresses."""
    if task == "regression" and estimator == "logistic_regression":
        raise TrainingError(
            "estimator 'logistic_regression' is a classifier but the target is a regression "
            "task: use ridge, random_forest or hist_gradient_boosting"
        )
    if task != "regression" and estimator == "ridge":
        raise TrainingError(
            f"estimator 'ridge' is a regressor but the target is a {task.replace('_', ' ')} "
            "task: use logistic_regression, random_forest or hist_gradient_boosting"
        )


def make_estimator(config: TrainingConfig, task: Task = "binary_classification") -> BaseEstimator:
    """The estimator ``config.estimator`` names, as a classifier or a regressor for ``task``."""
    check_estimator(config.estimator, task)
    regression = task == "regression"
    if config.estimator == "random_forest":
        forest = RandomForestRegressor if regression else RandomForestClassifier
        return forest(
            n_estimators=config.n_estimators,
            max_depth=config.max_depth,
            random_state=config.random_state,
            n_jobs=-1,
        )
    if config.estimator == "hist_gradient_boosting":
        boosting = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        return boosting(
            learning_rate=config.learning_rate,
            max_iter=config.max_iter,
            max_depth=config.max_depth,
            random_state=config.random_state,
        )
    if config.estimator == "ridge":
        return Ridge(alpha=config.alpha)
    return LogisticRegression(C=config.C, max_iter=2000)


def estimator_params(config: TrainingConfig) -> dict[str, str | int | float | bool | None]:
    names = {
        "random_forest": ("n_estimators", "max_depth", "random_state"),
        "hist_gradient_boosting": ("learning_rate", "max_iter", "max_depth", "random_state"),
        "logistic_regression": ("C",),
        "ridge": ("alpha",),
    }[config.estimator]
    return {name: getattr(config, name) for name in names}


def build_pipeline(
    schema: FeatureSchema, config: TrainingConfig, task: Task = "binary_classification"
) -> Pipeline:
    """Impute (and, for a linear model, standardize) numbers, one-hot encode categories, then the
    estimator: the last step is named ``classifier`` or ``regressor``."""
    names = schema.names
    numeric = [names.index(spec.name) for spec in schema.numeric]
    categorical = [names.index(spec.name) for spec in schema.categorical]
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if config.estimator in LINEAR:
        numeric_steps.append(("scale", StandardScaler()))
    transformers: list[tuple[str, Any, list[int]]] = []
    if numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), numeric))
    if categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        transformers.append(("categorical", encoder, categorical))
    return Pipeline(
        [
            ("features", ColumnTransformer(transformers, remainder="drop")),
            (
                "regressor" if task == "regression" else "classifier",
                make_estimator(config, task),
            ),
        ]
    )
