"""Metrics per task, computed on what the model outputs (``Predictor.predict_outputs``).

- binary classification: ``roc_auc``, ``accuracy``, ``precision``, ``recall``, ``f1``,
  ``log_loss``, ``brier`` (on the positive class's probability, at the decision threshold);
- multiclass classification: ``accuracy``, ``macro_f1``, ``weighted_f1``, ``log_loss`` and
  ``recall_<class>`` per class (``class_key`` spelling made ``metric_safe`` for MLflow), the
  predicted class being the most probable one;
- regression: ``rmse``, ``mae``, ``r2`` and ``residual_p05``/``p50``/``p95``, quantiles of
  ``y - prediction``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from sklearn import metrics

from lambdaserve.kernel.manifest import ClassLabel, Task, class_key

RESIDUAL_QUANTILES = {"residual_p05": 0.05, "residual_p50": 0.5, "residual_p95": 0.95}


def metric_safe(text: str) -> str:
    """``text`` as part of a metric name MLflow accepts (alphanumerics, ``_ - . / :`` and
    spaces): anything else becomes ``_`` (``Adelie Penguin (P. adeliae)`` ->
    ``Adelie Penguin _P. adeliae_``)."""
    return re.sub(r"[^A-Za-z0-9_\-. /:]", "_", text)


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


def multiclass_metrics(
    y_true: npt.NDArray[np.int64],
    probabilities: npt.NDArray[np.float64],
    classes: Sequence[ClassLabel],
) -> dict[str, float]:
    """``y_true`` holds indices into ``classes``; ``probabilities`` has one column per class."""
    labels = np.arange(len(classes))
    predicted = np.argmax(probabilities, axis=1)
    recalls = metrics.recall_score(y_true, predicted, labels=labels, average=None, zero_division=0)
    return {
        "accuracy": float(metrics.accuracy_score(y_true, predicted)),
        "macro_f1": float(
            metrics.f1_score(y_true, predicted, labels=labels, average="macro", zero_division=0)
        ),
        "weighted_f1": float(
            metrics.f1_score(y_true, predicted, labels=labels, average="weighted", zero_division=0)
        ),
        "log_loss": float(metrics.log_loss(y_true, probabilities, labels=labels)),
        **{
            f"recall_{metric_safe(class_key(label))}": float(recall)
            for label, recall in zip(classes, recalls, strict=True)
        },
    }


def regression_metrics(
    y_true: npt.NDArray[np.float64], predictions: npt.NDArray[np.float64]
) -> dict[str, float]:
    residuals = y_true - predictions
    return {
        "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, predictions))),
        "mae": float(metrics.mean_absolute_error(y_true, predictions)),
        "r2": float(metrics.r2_score(y_true, predictions)),
        **{name: float(np.quantile(residuals, q)) for name, q in RESIDUAL_QUANTILES.items()},
    }


def task_metrics(
    task: Task,
    y_true: npt.NDArray[np.generic],
    outputs: npt.NDArray[np.float64],
    classes: Sequence[ClassLabel] = (),
) -> dict[str, float]:
    """The task's metrics from the model's outputs: class probabilities ``(n, n_classes)``
    (binary also takes the positive class's ``(n,)``), or regression predictions ``(n,)``;
    ``y_true`` holds class indices (binary: 1 is the positive class) or the numbers."""
    if task == "regression":
        return regression_metrics(y_true.astype(np.float64), outputs)
    if task == "multiclass_classification":
        return multiclass_metrics(y_true.astype(np.int64), outputs, classes)
    scores = outputs[:, 1] if outputs.ndim == 2 else outputs
    return binary_metrics(y_true.astype(np.int64), scores)
