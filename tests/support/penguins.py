"""palmerpenguins (a real public dataset, not in the repo) and the pipeline a notebook holds for
it: the shared material of the bring-your-own-model tests and benchmark."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from palmerpenguins import load_penguins
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

#: A user's own package (a transformer class), served only with its code and trust named.
USER_CODE = Path(__file__).resolve().parent / "user_code"
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"]
TEXT = ["species", "island"]


def penguins() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Train and test splits of the penguins with a known sex, the target."""
    frame = load_penguins().dropna(subset=["sex"])
    x, y = frame.drop(columns=["sex"]), frame["sex"]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    return x_train, x_test, y_train, y_test


def json_row(row: pd.Series) -> dict[str, object]:
    """A DataFrame row as a client sends it: plain JSON values, null for missing."""
    return {
        str(k): None if pd.isna(v) else v.item() if isinstance(v, np.generic) else v
        for k, v in row.items()
    }


def user_pipeline(text: Sequence[str] = TEXT, estimator: BaseEstimator | None = None) -> Pipeline:
    """What a notebook holds: imputers, a scaler and a one-hot encoder by column name, then an
    estimator (boosting unless given)."""
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    features = ColumnTransformer(
        [("numeric", numeric, NUMERIC), ("categorical", categorical, list(text))]
    )
    final = estimator if estimator is not None else HistGradientBoostingClassifier(max_iter=40)
    return Pipeline([("features", features), ("model", final)])
