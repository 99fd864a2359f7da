"""The target column, cleaned for the task it poses: binary or multiclass classification, or
regression.

``task="auto"`` decides from the target (after missing-value tokens and blanks became missing
and those rows were dropped): a target that is not numeric (some present value does not parse as
a number) is classification; a numeric one (bools count) is classification when it has at most
``MAX_AUTO_CLASSES`` distinct values and every value is an integer, regression otherwise. A
classification with two classes is binary, with more multiclass. An explicit task overrides the
rule and is refused when the target does not fit it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from lambdaserve.kernel.errors import TrainingError
from lambdaserve.kernel.manifest import ClassLabel, TargetRange, Task, class_key
from lambdaserve.training.coercions import CoercionReport, is_blank, replace_missing_tokens
from lambdaserve.training.hyperparameters import TrainingConfig

MIN_ROWS = 20
MAX_AUTO_CLASSES = 20
_POSITIVE_WORDS = ("1", "true", "yes", "y", "positive", "churn", "churned")


@dataclass(frozen=True)
class Target:
    """The encoded target: class indices (classification) or numbers (regression)."""

    task: Task
    y: npt.NDArray[np.int64] | npt.NDArray[np.float64]
    classes: tuple[ClassLabel, ...] = ()
    positive_class: ClassLabel | None = None
    target_range: TargetRange | None = None


def _label(value: object) -> ClassLabel:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _shown(values: Sequence[object]) -> str:
    """``('a', 'b', ...)``: the first five values, each cut to 30 characters."""
    shown = ", ".join(repr(str(v)[:30]) for v in values[:5])
    return f"({shown}, ...)" if len(values) > 5 else f"({shown})"


def target_numbers(present: pd.Series) -> pd.Series | None:
    """The present target values as float64 when every one is a number (bools count), else None."""
    if pd.api.types.is_bool_dtype(present) or pd.api.types.is_numeric_dtype(present):
        return present.astype(np.float64)
    parsed = pd.to_numeric(
        present.map(lambda v: v.strip() if isinstance(v, str) else v), errors="coerce"
    )
    return None if bool(parsed.isna().any()) else parsed.astype(np.float64)


def _is_classification(config: TrainingConfig, numbers: pd.Series | None) -> bool:
    if config.task == "regression":
        return False
    if config.task != "auto" or numbers is None:
        return True
    values = numbers.to_numpy(dtype=np.float64)
    integers = bool(np.isfinite(values).all() and (values == np.round(values)).all())
    return integers and int(numbers.nunique()) <= MAX_AUTO_CLASSES


def _classification_task(config: TrainingConfig, distinct: list[ClassLabel]) -> Task:
    name, n = config.target, len(distinct)
    if config.task == "binary" and n != 2:
        raise TrainingError(
            f"target {name!r} must be binary: found {n} distinct value{'s' if n != 1 else ''}"
            + (" (a single class cannot be learned)" if n == 1 else "")
            + f" {_shown(distinct)}"
        )
    if config.task == "multiclass" and n < 3:
        raise TrainingError(
            f"target {name!r} has {n} distinct values {_shown(distinct)}: multiclass "
            "classification needs at least 3" + (" (use task binary)" if n == 2 else "")
        )
    if n < 2:
        raise TrainingError(
            f"target {name!r} has a single class {_shown(distinct)}: a single class cannot be "
            "learned"
        )
    return "binary_classification" if n == 2 else "multiclass_classification"


def _refuse_colliding(name: str, distinct: list[ClassLabel]) -> None:
    keys = [class_key(c) for c in distinct]
    colliding = [c for c, key in zip(distinct, keys, strict=True) if keys.count(key) > 1]
    if colliding:
        raise TrainingError(
            f"target {name!r} has classes that are the same JSON key: {_shown(colliding)}"
        )


def _binary(labels: pd.Series, distinct: list[ClassLabel], config: TrainingConfig) -> Target:
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
    return Target(
        task="binary_classification", y=y, classes=(negative, positive), positive_class=positive
    )


def _classification(labels: pd.Series, config: TrainingConfig) -> Target:
    distinct = sorted({*labels}, key=str)
    task = _classification_task(config, distinct)
    _refuse_colliding(config.target, distinct)
    if task == "binary_classification":
        return _binary(labels, distinct, config)
    index = {label: position for position, label in enumerate(distinct)}
    y = labels.map(index).to_numpy(dtype=np.int64)
    return Target(task=task, y=y, classes=tuple(distinct))


def _regression(present: pd.Series, numbers: pd.Series | None, name: str) -> Target:
    if numbers is None:
        text = present.map(lambda v: v.strip() if isinstance(v, str) else v)
        bad = present[pd.to_numeric(text, errors="coerce").isna()]
        raise TrainingError(
            f"task regression needs a numeric target: {len(bad)} of {len(present)} values of "
            f"{name!r} are not numbers {_shown(list(bad.unique()))}"
        )
    values = numbers.to_numpy(dtype=np.float64)
    infinite = int(np.isinf(values).sum())
    if infinite:
        raise TrainingError(
            f"target {name!r} has {infinite} infinite values: a regression target must be "
            "finite (fix or drop those rows)"
        )
    if np.unique(values).size < 2:
        raise TrainingError(f"target {name!r} is constant ({values[0]:g}): nothing to learn")
    integers = bool((values == np.round(values)).all())
    target_range = TargetRange(
        dtype="int64" if integers else "float64",
        minimum=float(values.min()),
        maximum=float(values.max()),
        mean=float(values.mean()),
        std=float(values.std()),
    )
    return Target(task="regression", y=values, target_range=target_range)


def _check_enough(target: Target, config: TrainingConfig) -> None:
    rows = len(target.y)
    if target.task == "binary_classification":
        positives = int(target.y.sum())
        if rows < MIN_ROWS or min(positives, rows - positives) < config.cv_folds:
            raise TrainingError(
                f"too little data: {rows} rows with {positives} positives; need at least "
                f"{MIN_ROWS} rows and {config.cv_folds} examples of each class"
            )
        return
    if rows < MIN_ROWS:
        raise TrainingError(f"too little data: {rows} rows; need at least {MIN_ROWS}")
    if target.task == "regression":
        return
    need = max(config.cv_folds, 2)
    counts = np.bincount(target.y.astype(np.int64), minlength=len(target.classes))
    rare = [
        f"class {c!r} has {n} row{'' if n == 1 else 's'}"
        for c, n in zip(target.classes, counts.tolist(), strict=True)
        if n < need
    ]
    if rare:
        raise TrainingError(
            f"too few examples of a class: target {config.target!r} needs at least {need} rows "
            f"of every class (cv_folds {config.cv_folds}); {', '.join(rare)}"
        )


def clean_target(
    frame: pd.DataFrame, config: TrainingConfig, report: CoercionReport
) -> tuple[pd.DataFrame, Target]:
    """The rows that have a target (the others dropped, counted) and the target encoded for its
    task; refused with a reason when the target cannot be learned as that task."""
    name = config.target
    if name not in frame.columns:
        shown = ", ".join(map(str, list(frame.columns)[:20]))
        raise TrainingError(f"target column {name!r} not found; columns are: {shown}")
    raw = replace_missing_tokens(frame[name], name, report)
    missing = raw.isna() | is_blank(raw)
    report.add(
        name,
        "dropped_rows_missing_target",
        int(missing.sum()),
        f"dropped {int(missing.sum())} rows whose target is missing",
    )
    if bool(missing.all()):
        raise TrainingError(f"target {name!r} has no values: every row's target is missing")
    frame = frame.loc[~missing].reset_index(drop=True)
    present = raw.loc[~missing].reset_index(drop=True)
    numbers = target_numbers(present)
    if _is_classification(config, numbers):
        target = _classification(present.map(_label), config)
    else:
        target = _regression(present, numbers, name)
    if config.positive_class is not None and target.task != "binary_classification":
        raise TrainingError(
            f"positive_class applies to binary classification only; target {name!r} is a "
            f"{target.task.replace('_', ' ')} task"
        )
    _check_enough(target, config)
    return frame, target
