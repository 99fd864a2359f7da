"""The pandas DataFrame a user's pipeline was fitted on, rebuilt from validated columns.

Only a bundle whose ``model_input`` is ``dataframe`` (``save_model``, MLflow imports) and that is
served by scikit-learn reaches this module: pandas is imported here, lazily, and nowhere else on
the serving path (our own bundles and every ONNX bundle never import it).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from lambdaserve.kernel.manifest import ModelInput
from lambdaserve.kernel.schema import MISSING_CATEGORY, FeatureSchema


def _column(values: npt.NDArray[np.generic], dtype: str) -> npt.NDArray[np.generic]:
    if values.dtype == object:
        # NaN, not None: SimpleImputer's default missing_values=np.nan does not match None.
        text = values.astype(object)
        text[text == MISSING_CATEGORY] = np.nan
        return text
    numbers = values.astype(np.float64)
    has_missing = bool(np.isnan(numbers).any())
    if dtype.startswith(("int", "uint")) and not has_missing:
        return numbers.astype(dtype)
    if dtype == "bool" and not has_missing:
        return numbers.astype(bool)
    return numbers


def columns_to_frame(
    schema: FeatureSchema, model_input: ModelInput, columns: Mapping[str, npt.NDArray[np.generic]]
) -> object:
    """A DataFrame in the fitted column order: numbers in their fitted dtype (float where a value
    is missing), text as ``object`` with NaN for missing, ``category`` columns restored."""
    import pandas as pd

    data = {}
    for spec in schema.features:
        dtype = model_input.dtypes.get(spec.name, "object")
        column = _column(columns[spec.name], dtype)
        if dtype == "category":
            data[spec.name] = pd.Categorical(column, categories=list(spec.categories))
        else:
            data[spec.name] = column
    return pd.DataFrame(data, columns=list(schema.names))
