"""Type the columns, coerce dirty values and count every coercion; refuse what cannot be fixed.

Rules (each coercion is counted and logged, never silent):
- blank strings and common missing-value tokens ("NA", "N/A", "null", "?", ...) become missing;
- a text column is numeric when at least ``NUMERIC_SHARE`` of its present values parse as numbers;
  the rest become missing. A column declared numeric that does not parse is an error;
- constant, all-missing and identifier-like columns are dropped;
- infinite numbers become missing; rows with a missing target are dropped;
- the target must have exactly two classes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from lambdaserve.kernel.encoding import normalize_category
from lambdaserve.kernel.errors import TrainingError
from lambdaserve.kernel.manifest import ClassLabel, Coercion
from lambdaserve.kernel.schema import (
    MISSING_CATEGORY,
    MISSING_TOKENS,
    FeatureDtype,
    FeatureSchema,
    FeatureSpec,
)
from lambdaserve.training.hyperparameters import TrainingConfig

log = logging.getLogger(__name__)

NUMERIC_SHARE = 0.95
MIN_ROWS = 20
IDENTIFIER_MIN_UNIQUE = 50
_POSITIVE_WORDS = ("1", "true", "yes", "y", "positive", "churn", "churned")


@dataclass(frozen=True)
class CleanedData:
    columns: dict[str, npt.NDArray[np.generic]]
    target: npt.NDArray[np.int64]
    schema: FeatureSchema
    classes: tuple[ClassLabel, ClassLabel]
    positive_class: ClassLabel
    dropped: tuple[str, ...]
    coercions: tuple[Coercion, ...]


class _Report:
    def __init__(self) -> None:
        self.coercions: list[Coercion] = []

    def add(self, column: str, action: str, count: int, message: str) -> None:
        if count:
            log.warning("%s: %s", column, message)
            self.coercions.append(
                Coercion(column=column, action=action, count=count, message=message)
            )


def _is_blank(series: pd.Series) -> pd.Series:
    return series.map(lambda v: isinstance(v, str) and v.strip() == "").astype(bool)


def _replace_missing_tokens(series: pd.Series, name: str, report: _Report) -> pd.Series:
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return series
    tokens = series.map(
        lambda v: isinstance(v, str) and bool(v.strip()) and v.strip().lower() in MISSING_TOKENS
    )
    tokens = tokens.astype(bool)
    report.add(
        name,
        "missing_token_to_missing",
        int(tokens.sum()),
        f"{int(tokens.sum())} missing-value tokens (NA, null, ?, ...) became missing values",
    )
    return series.mask(tokens) if tokens.any() else series


def _label(value: object) -> ClassLabel:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _target(
    frame: pd.DataFrame, config: TrainingConfig, report: _Report
) -> tuple[pd.DataFrame, npt.NDArray[np.int64], tuple[ClassLabel, ClassLabel], ClassLabel]:
    if config.target not in frame.columns:
        shown = ", ".join(map(str, list(frame.columns)[:20]))
        raise TrainingError(f"target column {config.target!r} not found; columns are: {shown}")
    raw = _replace_missing_tokens(frame[config.target], config.target, report)
    missing = raw.isna() | _is_blank(raw)
    report.add(
        config.target,
        "dropped_rows_missing_target",
        int(missing.sum()),
        f"dropped {int(missing.sum())} rows whose target is missing",
    )
    frame = frame.loc[~missing].reset_index(drop=True)
    labels = raw.loc[~missing].reset_index(drop=True).map(_label)
    distinct = sorted({*labels}, key=str)
    if len(distinct) != 2:
        raise TrainingError(
            f"target {config.target!r} must be binary: found {len(distinct)} distinct values"
            + (" (a single class cannot be learned)" if len(distinct) == 1 else "")
            + f" ({', '.join(repr(str(c)[:30]) for c in distinct[:5])}"
            + (", ...)" if len(distinct) > 5 else ")")
        )
    if config.positive_class is not None:
        matches = [c for c in distinct if str(c) == config.positive_class]
        if not matches:
            raise TrainingError(f"positive_class {config.positive_class!r} is not a target value")
        positive = matches[0]
    else:
        named = [c for c in distinct if str(c).lower() in _POSITIVE_WORDS]
        positive = named[0] if len(named) == 1 else min(distinct, key=lambda c: (labels == c).sum())
    negative = distinct[0] if distinct[1] == positive else distinct[1]
    y = (labels == positive).to_numpy(dtype=np.int64)
    return frame, y, (negative, positive), positive


def _numeric(series: pd.Series, name: str, declared: bool, report: _Report) -> pd.Series | None:
    """The column as float64, or None when it is not numeric."""
    if pd.api.types.is_bool_dtype(series):
        return series.astype(np.float64)
    if pd.api.types.is_numeric_dtype(series):
        values = series.astype(np.float64)
    else:
        blank = _is_blank(series)
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


def _numeric_feature(name: str, series: pd.Series, values: pd.Series, report: _Report) -> _Kept:
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


def _categorical_feature(name: str, series: pd.Series, report: _Report) -> _Kept:
    blank = _is_blank(series)
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


def _feature(name: str, series: pd.Series, config: TrainingConfig, report: _Report) -> _Kept:
    """One input column cleaned: numeric when declared or when it parses as numbers,
    categorical otherwise; None when it is dropped (constant, all missing, an identifier)."""
    series = _replace_missing_tokens(series, name, report)
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
    """The training frame as the model sees it: the target encoded, every feature column
    typed, described (the schema) and its values ready; every coercion reported."""
    _check_request(frame, config)
    report = _Report()
    frame, y, classes, positive = _target(frame, config, report)
    if len(frame) < MIN_ROWS or min(int(y.sum()), int(len(y) - y.sum())) < config.cv_folds:
        raise TrainingError(
            f"too little data: {len(frame)} rows with {int(y.sum())} positives; need at least "
            f"{MIN_ROWS} rows and {config.cv_folds} examples of each class"
        )
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
        target=y,
        schema=FeatureSchema(features=tuple(specs)),
        classes=classes,
        positive_class=positive,
        dropped=tuple(dropped),
        coercions=tuple(report.coercions),
    )
