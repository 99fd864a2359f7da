"""Holdout and cross-validation metrics for a model of any task (``training.metrics``)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from lambdaserve.kernel.manifest import ClassLabel, MetricSummary, Task
from lambdaserve.training.metrics import (
    binary_metrics,
    multiclass_metrics,
    regression_metrics,
    task_metrics,
)

__all__ = [
    "binary_metrics",
    "cross_validate",
    "model_outputs",
    "multiclass_metrics",
    "regression_metrics",
    "task_metrics",
]


def model_outputs(
    model: Pipeline, matrix: npt.NDArray[np.object_], task: Task, n_classes: int = 2
) -> npt.NDArray[np.float64]:
    """What serving outputs: the prediction ``(n,)`` (regression), or a probability column per
    class ``(n, n_classes)``, a class the model never saw (a fold without it) at zero."""
    if task == "regression":
        return np.asarray(model.predict(matrix), dtype=np.float64).reshape(-1)
    probabilities = np.asarray(model.predict_proba(matrix), dtype=np.float64)
    seen = np.asarray(model.classes_, dtype=np.int64)
    if len(seen) == n_classes:
        return probabilities
    full = np.zeros((len(matrix), n_classes), dtype=np.float64)
    full[:, seen] = probabilities
    return full


def cross_validate(
    pipeline: Pipeline,
    matrix: npt.NDArray[np.object_],
    y: npt.NDArray[np.int64] | npt.NDArray[np.float64],
    folds: int,
    random_state: int,
    *,
    task: Task = "binary_classification",
    classes: Sequence[ClassLabel] = (),
) -> dict[str, MetricSummary]:
    """Each metric's mean and std over ``folds`` folds (stratified for classification), each
    fold fitted on a clone: ``pipeline`` stays unfitted."""
    splitter = (
        KFold(n_splits=folds, shuffle=True, random_state=random_state)
        if task == "regression"
        else StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    )
    n_classes = len(classes) or 2
    per_fold: list[dict[str, float]] = []
    with warnings.catch_warnings():
        # A class with fewer rows than folds is allowed (cleaning asks for max(folds, 2)): the
        # folds without it score it as never predicted, which model_outputs accounts for.
        warnings.filterwarnings("ignore", "The least populated class in y", UserWarning)
        splits = list(splitter.split(matrix, y))
    for train_index, test_index in splits:
        model = clone(pipeline).fit(matrix[train_index], y[train_index])
        outputs = model_outputs(model, matrix[test_index], task, n_classes)
        per_fold.append(task_metrics(task, y[test_index], outputs, classes))
    return {
        name: MetricSummary(
            mean=float(np.mean([fold[name] for fold in per_fold])),
            std=float(np.std([fold[name] for fold in per_fold])),
        )
        for name in per_fold[0]
    }
