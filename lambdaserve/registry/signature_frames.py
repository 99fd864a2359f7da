"""The user's CSVs as an MLflow model takes them: columns and dtypes from the model's signature,
or from a sample CSV (or the reference itself) when it has none, so ``save_model`` infers the
schema and the reference profile from exactly the frame the model was fitted on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lambdaserve.kernel.errors import ModelSaveError

#: MLflow's column types and the pandas dtypes a scikit-learn pipeline fitted on them saw.
SIGNATURE_DTYPES = {
    "double": "float64",
    "float": "float64",
    "long": "int64",
    "integer": "int64",
    "boolean": "bool",
    "string": "str",
}


@dataclass(frozen=True)
class ColumnPlan:
    """The model's input columns in order with their pandas dtypes, and where they came from."""

    dtypes: dict[str, str]
    origin: str


def signature_plan(signature: Any, uri: str) -> ColumnPlan | None:
    """The columns an MLflow signature names (None without one, or for a tensor signature)."""
    inputs = getattr(signature, "inputs", None)
    if inputs is None or inputs.is_tensor_spec() or not inputs.has_input_names():
        return None
    dtypes: dict[str, str] = {}
    for spec in inputs.inputs:
        dtype = SIGNATURE_DTYPES.get(str(getattr(spec.type, "name", "")))
        if dtype is None:
            raise ModelSaveError(
                f"{uri}'s signature gives column {spec.name!r} the type {spec.type}; lambdaserve "
                "serves numbers, booleans and text: log the model with a signature of those"
            )
        dtypes[str(spec.name)] = dtype
    return ColumnPlan(dtypes, "the model's signature")


def sample_plan(path: Path) -> ColumnPlan:
    """The columns of a sample of the model's input, with the dtypes pandas reads them as."""
    frame = _read(path, "--sample")
    return ColumnPlan({str(c): _dtype_of(frame[c]) for c in frame.columns}, f"--sample {path.name}")


def read_frame(
    path: Path, plan: ColumnPlan | None, target: str | None, what: str
) -> tuple[pd.DataFrame, pd.Series | None]:
    """``path``'s feature columns cast as ``plan`` says (as read, without one) and its ``target``
    column (when named)."""
    if plan is not None and target in plan.dtypes:
        raise ModelSaveError(f"--target {target} is one of the model's inputs ({plan.origin})")
    if plan is None:
        frame = _read(path, what)
    else:
        _check_columns(path, _read(path, what, rows=0).columns, plan, target, what)
        text = {name: "str" for name, dtype in plan.dtypes.items() if dtype == "str"}
        frame = _read(path, what, dtypes=text)
    target_values = None
    if target is not None:
        if target not in frame.columns:
            raise ModelSaveError(f"{what} {path.name} has no target column {target!r} (--target)")
        target_values = frame.pop(target)
    if plan is not None:
        frame = pd.DataFrame(
            {
                name: _cast(frame[name], dtype, f"{what} {path.name}")
                for name, dtype in plan.dtypes.items()
            }
        )
    return frame, target_values


def _read(
    path: Path, what: str, *, rows: int | None = None, dtypes: dict[str, str] | None = None
) -> pd.DataFrame:
    try:
        return pd.read_csv(path, nrows=rows, dtype=dtypes)
    except OSError as exc:
        raise ModelSaveError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # pandas' parser and empty-data errors
        raise ModelSaveError(f"{what} {path} is not a readable CSV: {exc}") from exc


def _dtype_of(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int64"
    if pd.api.types.is_numeric_dtype(series):
        return "float64"
    return "str"


def _check_columns(
    path: Path, header: pd.Index, plan: ColumnPlan, target: str | None, what: str
) -> None:
    names = [str(c) for c in header]
    missing = [n for n in plan.dtypes if n not in names]
    extra = [n for n in names if n not in plan.dtypes and n != target]
    if missing or extra:
        problems = "; ".join(
            part
            for part in (
                f"missing {missing}" if missing else "",
                f"not in it {extra} (drop them, or name the target with --target COL)"
                if extra
                else "",
            )
            if part
        )
        raise ModelSaveError(f"{what} {path.name}'s columns do not match {plan.origin}: {problems}")


def _cast(series: pd.Series, dtype: str, what: str) -> pd.Series:
    """One column as the model's schema types it; a value that does not fit is an error."""
    name = str(series.name)
    if dtype == "str":
        return series.astype("str")
    if dtype == "bool":
        if pd.api.types.is_bool_dtype(series):
            return series
        raise ModelSaveError(
            f"column {name!r} of {what} is not all true/false, but the model takes a boolean"
        )
    numbers = pd.to_numeric(series, errors="coerce")
    if int((numbers.isna() & series.notna()).sum()):
        raise ModelSaveError(f"column {name!r} of {what} holds text, but the model takes numbers")
    if dtype == "float64":
        return numbers.astype("float64")
    if numbers.isna().any() or not (numbers == numbers.round()).all():
        raise ModelSaveError(
            f"column {name!r} of {what} holds missing or fractional values, but the model takes "
            "integers (long): fill them, or log the model with a signature of doubles"
        )
    return numbers.astype("int64")
