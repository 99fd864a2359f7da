"""Turn validated rows into the column arrays every predictor takes (numpy only, no pandas)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from lambdaserve.kernel.schema import MISSING_CATEGORY, MISSING_TOKENS, FeatureSchema

Row = Mapping[str, object]
Columns = dict[str, npt.NDArray[np.generic]]


def normalize_category(value: object) -> str:
    """The category a raw value stands for, the same way at training and serving time."""
    text = str(value).strip()
    return MISSING_CATEGORY if text.lower() in MISSING_TOKENS else text


def rows_to_columns(schema: FeatureSchema, rows: Sequence[Row]) -> Columns:
    """One array per feature: float64 with NaN for numeric, object (str) for categorical.

    Rows must already be validated (every column present, right types).
    """
    columns: Columns = {}
    for spec in schema.features:
        values = [row[spec.name] for row in rows]
        if spec.kind == "numeric":
            columns[spec.name] = np.array(
                [np.nan if v is None else float(v) for v in values],  # type: ignore[arg-type]
                dtype=np.float64,
            )
        else:
            columns[spec.name] = np.array(
                [MISSING_CATEGORY if v is None else normalize_category(v) for v in values],
                dtype=object,
            )
    return columns


def columns_to_matrix(
    schema: FeatureSchema, columns: Mapping[str, npt.NDArray[np.generic]]
) -> npt.NDArray[np.object_]:
    """The 2-D object matrix, in schema order, that the scikit-learn pipeline was fitted on."""
    n_rows = len(next(iter(columns.values())))
    matrix = np.empty((n_rows, len(schema.features)), dtype=object)
    for index, name in enumerate(schema.names):
        matrix[:, index] = columns[name]
    return matrix
