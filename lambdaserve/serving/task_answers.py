"""What a prediction answers per task, from the predictor's raw outputs: binary ``probability``
(of the positive class) and ``label``; multiclass ``label`` and ``probabilities`` (every class,
keyed by its JSON spelling); regression ``prediction``. Also the one number per request the
observer reports as the mean score, which the AWS rollout guard's score-shift alarm compares
between challenger and champion, kept on one scale for every task: the positive class's
probability (binary), the top class's probability (multiclass: the model's confidence), or the
prediction standardized by the training target's mean and standard deviation (regression)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from lambdaserve.kernel.capture_lines import Outputs
from lambdaserve.kernel.manifest import Manifest, class_key

#: Raw predictor outputs -> each row's answer fields, and the request's mean score.
TaskAnswers = Callable[[npt.NDArray[np.float64]], tuple[list[Outputs], float]]


def task_answers(manifest: Manifest) -> TaskAnswers:
    """The answering function of the manifest's task."""
    if manifest.task == "binary_classification":
        return _binary(manifest)
    if manifest.task == "multiclass_classification":
        return _multiclass(manifest)
    return _regression(manifest)


def _binary(manifest: Manifest) -> TaskAnswers:
    threshold, labels = manifest.decision_threshold, manifest.binary_classes

    def answer(raw: npt.NDArray[np.float64]) -> tuple[list[Outputs], float]:
        # ONNX Runtime computes in float32: a certain row can come out at 1.0000001.
        probabilities: list[float] = np.clip(raw[:, 1], 0.0, 1.0).tolist()
        answered: list[Outputs] = [
            {"probability": p, "label": labels[p >= threshold]} for p in probabilities
        ]
        return answered, sum(probabilities) / len(probabilities)

    return answer


def _multiclass(manifest: Manifest) -> TaskAnswers:
    classes = manifest.classes
    keys = [class_key(c) for c in classes]

    def answer(raw: npt.NDArray[np.float64]) -> tuple[list[Outputs], float]:
        raw = np.clip(raw, 0.0, 1.0)  # float32 rounding, as for binary answers
        best = raw.argmax(axis=1).tolist()
        answered: list[Outputs] = [
            {"label": classes[top], "probabilities": dict(zip(keys, row, strict=True))}
            for top, row in zip(best, raw.tolist(), strict=True)
        ]
        return answered, float(raw.max(axis=1).mean())

    return answer


def _regression(manifest: Manifest) -> TaskAnswers:
    span = manifest.target_range
    mean, std = (span.mean, span.std or 1.0) if span is not None else (0.0, 1.0)

    def answer(raw: npt.NDArray[np.float64]) -> tuple[list[Outputs], float]:
        predictions: list[float] = raw.tolist()
        standardized = (sum(predictions) / len(predictions) - mean) / std
        return [{"prediction": p} for p in predictions], standardized

    return answer
