"""Holdout and cross-validation metrics for a binary classifier."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sklearn import metrics
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from lambdaserve.kernel.manifest import MetricSummary


def binary_metrics(
    y_true: npt.NDArray[np.int64], scores: npt.NDArray[np.float64], threshold: float = 0.5
) -> dict[str, float]:
    predicted = (scores >= threshold).astype(np.int64)
    return {
        "roc_auc": float(metrics.roc_auc_score(y_true, scores)),
        "accuracy": float(metrics.accuracy_score(y_true, predicted)),
        "precision": float(metrics.precision_score(y_true, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(y_true, predicted, zero_division=0)),
        "f1": float(metrics.f1_score(y_true, predicted, zero_division=0)),
        "log_loss": float(metrics.log_loss(y_true, np.clip(scores, 1e-15, 1 - 1e-15))),
        "brier": float(metrics.brier_score_loss(y_true, scores)),
    }


def cross_validate(
    pipeline: Pipeline,
    matrix: npt.NDArray[np.object_],
    y: npt.NDArray[np.int64],
    folds: int,
    random_state: int,
) -> dict[str, MetricSummary]:
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    per_fold: list[dict[str, float]] = []
    for train_index, test_index in splitter.split(matrix, y):
        model = clone(pipeline).fit(matrix[train_index], y[train_index])
        scores = model.predict_proba(matrix[test_index])[:, 1]
        per_fold.append(binary_metrics(y[test_index], scores))
    return {
        name: MetricSummary(
            mean=float(np.mean([fold[name] for fold in per_fold])),
            std=float(np.std([fold[name] for fold in per_fold])),
        )
        for name in per_fold[0]
    }
