"""Scoring one prediction against its observed outcome, per task: what the A/B statistics test.

A binary classifier's capture carries the positive class's ``probability`` and the served
``label``; a multiclass one the served ``label`` and ``probabilities`` keyed by ``class_key``
(every class); a regressor its ``prediction``. Feedback carries the observed ``label``
(classification) or ``value`` (regression). Per labelled prediction:

- classification: the log loss, ``-log p(observed class)`` with ``p`` clipped to
  [EPSILON, 1 - EPSILON], and a hit (1.0 when the served label was observed); binary also keeps
  the observed outcome (1.0: the positive class) and the clipped probability (Brier, ROC AUC);
- regression: the squared and the absolute error, the observed value and the prediction.

A prediction that cannot be scored says why (``Unscored``): its capture lacks the task's
outputs, a number in it (or the observed value) is not finite, or the observed class is not one
of the model's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from lambdaserve.kernel.capture import CaptureRecord, FeedbackRecord
from lambdaserve.kernel.errors import InvalidInputError
from lambdaserve.kernel.manifest import ClassLabel, Task, class_key

EPSILON = 1e-15

#: Why a labelled prediction was left out.
Unscored = Literal["missing_outputs", "non_finite", "unknown_class"]


@dataclass(frozen=True)
class Outcome:
    """One labelled prediction as the statistics see it."""

    loss: float  # log loss (classification) or squared error (regression)
    hit: float | None = None  # classification: 1.0 when the served label was observed
    abs_error: float | None = None  # regression
    observed: float | None = None  # binary: 1.0 for the positive class; regression: the value
    score: float | None = None  # binary: the clipped probability; regression: the prediction


@dataclass(frozen=True)
class TaskScoring:
    """How a model's predictions are scored: its task and, for classification, its classes
    (``positive_class``: binary only; without ``classes`` a multiclass outcome is checked
    against the classes its capture names)."""

    task: Task
    classes: tuple[ClassLabel, ...] = ()
    positive_class: ClassLabel | None = None

    def __post_init__(self) -> None:
        if self.task == "binary_classification" and self.positive_class is None:
            raise InvalidInputError("a binary classification A/B report needs the positive class")

    @property
    def is_classifier(self) -> bool:
        return self.task != "regression"

    def fits(self, feedback: FeedbackRecord) -> bool:
        """Whether the feedback is of this task's kind: a label for a classifier, a value for a
        regressor."""
        if self.is_classifier:
            return feedback.label is not None
        return feedback.value is not None

    def score(self, capture: CaptureRecord, feedback: FeedbackRecord) -> Outcome | Unscored:
        """``capture`` scored against the outcome ``feedback`` observed (of this task's kind)."""
        if self.task == "regression":
            return _regression(capture, feedback.value)
        if feedback.label is None:
            raise ValueError("classification feedback without a label")
        if self.task == "binary_classification":
            return _binary(capture, feedback.label, self.positive_class)
        return _multiclass(capture, feedback.label, [class_key(c) for c in self.classes])


def _binary(
    capture: CaptureRecord, observed: ClassLabel, positive_class: ClassLabel | None
) -> Outcome | Unscored:
    if capture.probability is None or capture.label is None:
        return "missing_outputs"
    if not math.isfinite(capture.probability):
        # One NaN makes an arm's mean log loss NaN and its test "no difference" (as drift).
        return "non_finite"
    y = np.float64(observed == positive_class)
    p = np.clip(np.float64(capture.probability), EPSILON, 1 - EPSILON)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return Outcome(
        loss=float(loss), hit=float(observed == capture.label), observed=float(y), score=float(p)
    )


def _multiclass(
    capture: CaptureRecord, observed: ClassLabel, keys: list[str]
) -> Outcome | Unscored:
    probabilities = capture.probabilities
    if capture.label is None or not probabilities:
        return "missing_outputs"
    key = class_key(observed)
    if keys and key not in keys:
        return "unknown_class"
    if any(k not in probabilities for k in keys):
        return "missing_outputs"  # a capture of a multiclass model names every class
    if key not in probabilities:
        return "unknown_class"
    if not math.isfinite(probabilities[key]):
        return "non_finite"
    p = np.clip(np.float64(probabilities[key]), EPSILON, 1 - EPSILON)
    return Outcome(loss=float(-np.log(p)), hit=float(class_key(capture.label) == key))


def _regression(capture: CaptureRecord, value: float | None) -> Outcome | Unscored:
    if capture.prediction is None:
        return "missing_outputs"
    if value is None:
        raise ValueError("regression feedback without a value")
    if not (math.isfinite(capture.prediction) and math.isfinite(value)):
        return "non_finite"
    error = capture.prediction - value
    return Outcome(
        loss=error * error, abs_error=abs(error), observed=value, score=capture.prediction
    )
