"""The scikit-learn pipeline: column typing, imputation, encoding and the chosen estimator.

The pipeline is fitted on the object matrix ``lambdaserve.kernel.encoding.columns_to_matrix``
builds, with columns addressed by position, so serving needs numpy only (no pandas), and
skl2onnx can export it with one named input per feature.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lambdaserve.kernel.schema import FeatureSchema
from lambdaserve.training.hyperparameters import TrainingConfig


def make_estimator(config: TrainingConfig) -> ClassifierMixin:
    if config.estimator == "random_forest":
        return RandomForestClassifier(
            n_estimators=config.n_estimators,
            max_depth=config.max_depth,
            random_state=config.random_state,
            n_jobs=-1,
        )
    if config.estimator == "hist_gradient_boosting":
        return HistGradientBoostingClassifier(
            learning_rate=config.learning_rate,
            max_iter=config.max_iter,
            max_depth=config.max_depth,
            random_state=config.random_state,
        )
    return LogisticRegression(C=config.C, max_iter=2000)


def estimator_params(config: TrainingConfig) -> dict[str, str | int | float | bool | None]:
    names = {
        "random_forest": ("n_estimators", "max_depth", "random_state"),
        "hist_gradient_boosting": ("learning_rate", "max_iter", "max_depth", "random_state"),
        "logistic_regression": ("C",),
    }[config.estimator]
    return {name: getattr(config, name) for name in names}


def build_pipeline(schema: FeatureSchema, config: TrainingConfig) -> Pipeline:
    names = schema.names
    numeric = [names.index(spec.name) for spec in schema.numeric]
    categorical = [names.index(spec.name) for spec in schema.categorical]
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if config.estimator == "logistic_regression":
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
            ("classifier", make_estimator(config)),
        ]
    )
