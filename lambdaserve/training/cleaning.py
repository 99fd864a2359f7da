"""Type the columns, coerce dirty values and count every coercion; refuse what cannot be fixed.

Rules (each coercion is counted and logged, never silent):
- blank strings and common missing-value tokens ("NA", "N/A", "null", "?", ...) become missing;
- a text column is numeric when at least ``NUMERIC_SHARE`` of its present values parse as numbers;
  the rest become missing. A column declared numeric that does not parse is an error;
- constant, all-missing and identifier-like columns are dropped;
- infinite numbers become missing; rows with a missing target are dropped;
- the target is encoded for its task (``targets``: binary, multiclass or regression).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from lambdaserve.kernel.encoding import normalize_category
from lambdaserve.kernel.errors import TrainingError
from lambdaserve.kernel.manifest import ClassLabel, Coercion, TargetRange, Task
from lambdaserve.kernel.schema import (
    MISSING_CATEGORY,
    FeatureDtype,
    FeatureSchema,
    FeatureSpec,
)
from lambdaserve.training.coercions import CoercionReport, is_blank, replace_missing_tokens
from lambdaserve.training.hyperparameters import TrainingConfig
from lambdaserve.training.targets import clean_target

NUMERIC_SHARE = 0.95
IDENTIFIER_MIN_UNIQUE = 50


@dataclass(frozen=True)
class CleanedData:
    """The training data as the model sees it. ``target`` holds class indices into ``classes``
    (binary: 1 is the positive class) for classification, the numbers for regression."""

    columns: dict[str, npt.NDArray[np.generic]]
    target: npt.NDArray[np.int64] | npt.NDArray[np.float64]
    schema: FeatureSchema
    task: Task
    classes: tuple[ClassLabel, ...]
    positive_class: ClassLabel | None
    dropped: tuple[str, ...]
    coercions: tuple[Coercion, ...]
    target_range: TargetRange | None = None


def _numeric(
    series: pd.Series, name: str, declared: bool, report: CoercionReport
) -> pd.Series | None:
    """The column as float64, or None when it is not numeric."""
    if pd.api.types.is_bool_dtype(series):
        return series.astype(np.float64)
    if pd.api.types.is_numeric_dtype(series):
        values = series.astype(np.float64)
    else:
        blank = is_blank(series)
        present = series[~series.isna() & ~blank]
        parsed = pd.to_numeric(present.astype(str).str.strip(), errors="coerce")
        bad = int(parsed.isna().sum())
        if len(present) == 0:
            return pd.Series(np.nan, index=series.index, dtype=np.float64)  # dropped as empty
        if (len(present) - bad) / len(present) < NUMERIC_SHARE:
            if declared:
                raise TrainingError(
                    f"column {name!r} is declared numeric but {bad} of {len(present)} present "
                    "values are not numbers"
                )
            return None
        report.add(
            name,
            "blank_to_missing",
            int(blank.sum()),
            f"{int(blank.sum())} blank strings became missing values",
        )
        report.add(
            name,
            "unparseable_to_missing",
            bad,
            f"{bad} values that are not numbers became missing values",
        )
        values = pd.Series(np.nan, index=series.index, dtype=np.float64)
        values.loc[parsed.index] = parsed.astype(np.float64)
    infinite = np.isinf(values.to_numpy())
    report.add(
        name,
        "infinite_to_missing",
        int(infinite.sum()),
        f"{int(infinite.sum())} infinite values became missing values",
    )
    return values.mask(infinite)


def _numeric_dtype(original: pd.Series, values: pd.Series) -> FeatureDtype:
    if pd.api.types.is_bool_dtype(original):
        return "bool"
    present = values.dropna()
    return "int" if len(present) and bool((present == np.round(present)).all()) else "float"


#: A feature column as training keeps it: its spec and its values (or None: dropped).
_Kept = tuple[FeatureSpec, npt.NDArray[np.generic]] | None


def _numeric_feature(
    name: str, series: pd.Series, values: pd.Series, report: CoercionReport
) -> _Kept:
    present = values.dropna()
    if present.nunique() <= 1:
        report.add(name, "dropped_constant", 1, "dropped: constant or all missing")
        return None
    missing = float(values.isna().mean())
    spec = FeatureSpec(
        name=name,
        kind="numeric",
        dtype=_numeric_dtype(series, values),
        nullable=missing > 0,
        minimum=float(present.min()),
        maximum=float(present.max()),
        missing_fraction=missing,
    )
    return spec, values.to_numpy(dtype=np.float64)


def _categorical_feature(name: str, series: pd.Series, report: CoercionReport) -> _Kept:
    blank = is_blank(series)
    report.add(
        name,
        "blank_to_missing",
        int(blank.sum()),
        f"{int(blank.sum())} blank strings became missing values",
    )
    text = series.mask(blank).map(lambda v: None if pd.isna(v) else normalize_category(v))
    present = text.dropna()
    n_unique = present.nunique()
    if n_unique <= 1:
        report.add(name, "dropped_constant", 1, "dropped: constant or all missing")
        return None
    if n_unique >= IDENTIFIER_MIN_UNIQUE and n_unique > 0.5 * len(present):
        report.add(
            name,
            "dropped_identifier",
            1,
            f"dropped: {n_unique} distinct values in {len(present)} rows looks like an "
            "identifier (list it in categorical_columns to keep it)",
        )
        return None
    missing = float(text.isna().mean())
    spec = FeatureSpec(
        name=name,
        kind="categorical",
        dtype="string",
        nullable=missing > 0,
        categories=tuple(sorted(present.unique())),
        missing_fraction=missing,
    )
    return spec, text.fillna(MISSING_CATEGORY).to_numpy(dtype=object)


def _feature(name: str, series: pd.Series, config: TrainingConfig, report: CoercionReport) -> _Kept:
    """One input column cleaned: numeric when declared or when it parses as numbers,
    categorical otherwise; None when it is dropped (constant, all missing, an identifier)."""
    series = replace_missing_tokens(series, name, report)
    if name not in config.categorical_columns:
        values = _numeric(series, name, name in config.numeric_columns, report)
        if values is not None:
            return _numeric_feature(name, series, values, report)
    return _categorical_feature(name, series, report)


def _check_request(frame: pd.DataFrame, config: TrainingConfig) -> None:
    unknown = sorted(set(config.drop) - set(frame.columns))
    if unknown:
        raise TrainingError(f"cannot drop columns that do not exist: {unknown}")
    if config.target in config.drop:
        raise TrainingError(f"the target {config.target!r} cannot also be dropped")


def clean(frame: pd.DataFrame, config: TrainingConfig) -> CleanedData:
    """The training frame as the model sees it: the target encoded for its task, every feature
    column typed, described (the schema) and its values ready; every coercion reported."""
    _check_request(frame, config)
    report = CoercionReport()
    frame, target = clean_target(frame, config, report)
    dropped = list(config.drop)
    specs: list[FeatureSpec] = []
    columns: dict[str, npt.NDArray[np.generic]] = {}
    for column in (c for c in frame.columns if c != config.target and c not in config.drop):
        kept = _feature(str(column), frame[column], config, report)
        if kept is None:
            dropped.append(str(column))
            continue
        spec, values = kept
        specs.append(spec)
        columns[spec.name] = values
    if not specs:
        raise TrainingError("no usable feature columns remain after cleaning")
    return CleanedData(
        columns=columns,
        target=target.y,
        schema=FeatureSchema(features=tuple(specs)),
        task=target.task,
        classes=target.classes,
        positive_class=target.positive_class,
        dropped=tuple(dropped),
        coercions=tuple(report.coercions),
        target_range=target.target_range,
    )
