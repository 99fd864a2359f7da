"""A user's training DataFrame as the bundle contract sees it: the feature schema, the pandas
dtypes the model was fitted on, and the column arrays the reference profile and ONNX take.

Unlike ``cleaning`` (our own job's input, which may be dirty and is coerced), a user's frame is
taken as it is: their pipeline was fitted on it, so every column is kept, in order, with its dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from lambdaserve.kernel.encoding import Columns, normalize_category
from lambdaserve.kernel.errors import ModelSaveError
from lambdaserve.kernel.manifest import ModelInput
from lambdaserve.kernel.schema import MISSING_CATEGORY, FeatureSchema, FeatureSpec


def _is_text(series: pd.Series) -> bool:
    return bool(
        pd.api.types.is_object_dtype(series)
        or pd.api.types.is_string_dtype(series)
        or isinstance(series.dtype, pd.CategoricalDtype)
    )


def _numeric_spec(name: str, series: pd.Series) -> FeatureSpec:
    values = series.astype(np.float64)
    if np.isinf(values).any():
        raise ModelSaveError(f"column {name!r} holds infinite values; replace them before saving")
    present = values.dropna()
    missing = float(values.isna().mean())
    dtype = (
        "bool"
        if pd.api.types.is_bool_dtype(series)
        else "int"
        if pd.api.types.is_integer_dtype(series)
        else "float"
    )
    return FeatureSpec(
        name=name,
        kind="numeric",
        dtype=dtype,
        nullable=missing > 0,
        minimum=float(present.min()) if len(present) else None,
        maximum=float(present.max()) if len(present) else None,
        missing_fraction=missing,
    )


def _categorical_spec(name: str, series: pd.Series) -> FeatureSpec:
    present = series.dropna()
    not_text = [v for v in present.unique()[:5] if not isinstance(v, str)]
    if not_text:
        raise ModelSaveError(
            f"column {name!r} mixes text with other values ({not_text[:3]}); give it one type "
            "(astype(str) or a number) and fit the model on that"
        )
    categories = sorted({normalize_category(v) for v in present} - {MISSING_CATEGORY})
    missing = float(series.isna().mean())
    return FeatureSpec(
        name=name,
        kind="categorical",
        dtype="string",
        nullable=missing > 0,
        categories=tuple(categories),
        missing_fraction=missing,
    )


def frame_schema(frame: pd.DataFrame) -> tuple[FeatureSchema, ModelInput]:
    """Each column's spec (order, kind, dtype, nullable, observed range or categories) and the
    pandas dtypes the model takes."""
    specs = []
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            specs.append(_numeric_spec(str(name), series))
        elif _is_text(series):
            specs.append(_categorical_spec(str(name), series))
        else:
            raise ModelSaveError(
                f"column {name!r} has dtype {series.dtype}, which a JSON request cannot carry: "
                "use numbers, booleans or text (e.g. a timestamp as its parts or epoch seconds)"
            )
    dtypes = {str(name): str(frame[name].dtype) for name in frame.columns}
    return FeatureSchema(features=tuple(specs)), ModelInput(kind="dataframe", dtypes=dtypes)


def frame_columns(schema: FeatureSchema, frame: pd.DataFrame) -> Columns:
    """The arrays serving builds from a request for these rows: numbers as float64 with NaN,
    text normalized as serving normalizes it, missing as the missing category."""
    columns: Columns = {}
    for spec in schema.features:
        series = frame[spec.name]
        if spec.kind == "numeric":
            columns[spec.name] = series.astype(np.float64).to_numpy()
        else:
            columns[spec.name] = np.array(
                [MISSING_CATEGORY if pd.isna(v) else normalize_category(v) for v in series],
                dtype=object,
            )
    return columns


def check_frame(frame: object, fitted_names: Sequence[str] | None, what: str) -> pd.DataFrame:
    """``frame`` as a DataFrame with exactly the fitted columns, in the fitted order."""
    if not isinstance(frame, pd.DataFrame):
        raise ModelSaveError(
            f"{what} must be a pandas DataFrame of model inputs (got {type(frame).__name__}): "
            "its column names become the API's fields"
        )
    if frame.empty:
        raise ModelSaveError(f"{what} has no rows")
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        raise ModelSaveError(f"{what} has duplicate column names")
    if fitted_names is None:
        return frame
    fitted = [str(n) for n in fitted_names]
    missing = [n for n in fitted if n not in names]
    extra = [n for n in names if n not in fitted]
    if missing or extra:
        raise ModelSaveError(
            f"{what}'s columns do not match what the model was fitted on: "
            + "; ".join(
                part
                for part in (
                    f"missing {missing}" if missing else "",
                    f"not seen at fit {extra}" if extra else "",
                )
                if part
            )
        )
    return frame[fitted]


def target_array(y: object, what: str) -> npt.NDArray[np.generic]:
    values = np.asarray(y.to_numpy() if isinstance(y, pd.Series | pd.DataFrame) else y)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values.reshape(-1)
    if values.ndim != 1:
        raise ModelSaveError(f"{what} must be one column of targets, got shape {values.shape}")
    return values
