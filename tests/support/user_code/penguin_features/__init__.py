"""A user's own feature step, as a notebook would grow one: not part of scikit-learn, so a model
holding it is served only where this package is deployed and its type is trusted."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin


class BillShape(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Adds the bill's length-to-depth ratio, a feature biologists use to tell species apart."""

    def fit(self, X: pd.DataFrame, y: object = None) -> BillShape:
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        ratio = X["bill_length_mm"] / X["bill_depth_mm"]
        return X.assign(bill_ratio=ratio)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray([*self.feature_names_in_, "bill_ratio"], dtype=object)
