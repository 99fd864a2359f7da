"""A user's fitted model and its data, checked and measured before a bundle is written: the
task, the schema, the outputs on the training rows and the holdout, the holdout metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from lambdaserve.kernel.errors import ModelSaveError
from lambdaserve.kernel.manifest import ClassLabel, ModelInput, TargetRange, Task
from lambdaserve.kernel.schema import FeatureSchema
from lambdaserve.training.frames import check_frame, frame_schema, target_array
from lambdaserve.training.metrics import task_metrics
from lambdaserve.training.user_models import (
    encode_target,
    fitted_names,
    frame_outputs,
    model_classes,
    model_task,
)


@dataclass(frozen=True)
class Evaluation:
    frame: pd.DataFrame
    outputs: npt.NDArray[np.float64]
    metrics: dict[str, float]


def evaluate(
    model: object,
    eval_set: tuple[object, object] | None,
    names: list[str],
    task: Task,
    classes: tuple[ClassLabel, ...],
) -> Evaluation | None:
    if eval_set is None:
        return None
    if not isinstance(eval_set, tuple | list) or len(eval_set) != 2:
        raise ModelSaveError("eval_set must be a pair (X_holdout, y_holdout)")
    frame = check_frame(eval_set[0], names, "eval_set's X")
    y = target_array(eval_set[1], "eval_set's y")
    if len(y) != len(frame):
        raise ModelSaveError(f"eval_set has {len(frame)} rows of X but {len(y)} targets")
    outputs = frame_outputs(model, frame, task, "eval_set's X")
    encoded = encode_target(y, task, classes, "eval_set's y")
    return Evaluation(frame, outputs, task_metrics(task, encoded, outputs, classes))


def _target_range(y: npt.NDArray[np.float64], integral: bool) -> TargetRange:
    return TargetRange(
        dtype="int64" if integral else "float64",
        minimum=float(y.min()),
        maximum=float(y.max()),
        mean=float(y.mean()),
        std=float(y.std()),
    )


def _regression_range(
    y: object | None, evaluation: Evaluation | None, train_outputs: npt.NDArray[np.float64]
) -> TargetRange:
    """The target's range from ``y``, else from the holdout's, else from the model's outputs."""
    if y is not None:
        raw = target_array(y, "y")
        values = encode_target(raw, "regression", (), "y").astype(np.float64)
        return _target_range(values, np.issubdtype(raw.dtype, np.integer))
    if evaluation is not None:
        return _target_range(evaluation.outputs, integral=False)
    return _target_range(train_outputs, integral=False)


@dataclass(frozen=True)
class InspectedModel:
    """The model and its data, checked: everything the bundle records, before a byte is written."""

    task: Task
    frame: pd.DataFrame
    schema: FeatureSchema
    model_input: ModelInput
    classes: tuple[ClassLabel, ...]
    train_outputs: npt.NDArray[np.float64]
    evaluation: Evaluation | None
    target_range: TargetRange | None
    positive_rate: float | None
    target: str

    @property
    def parity(self) -> tuple[pd.DataFrame, npt.NDArray[np.float64]]:
        """Rows and outputs ONNX must reproduce (and the reference profiles): the holdout's."""
        if self.evaluation is not None:
            return self.evaluation.frame, self.evaluation.outputs
        return self.frame, self.train_outputs


def inspect_model(
    model: object,
    X: object,
    y: object | None,
    eval_set: tuple[object, object] | None,
    task: str | None,
) -> InspectedModel:
    kind = model_task(model, task)
    names = fitted_names(model)
    frame = check_frame(X, names, "X")
    schema, model_input = frame_schema(frame)
    classes = model_classes(model) if kind != "regression" else ()
    train_outputs = frame_outputs(model, frame, kind, "X")
    evaluation = evaluate(model, eval_set, names, kind, classes)
    target_range = _regression_range(y, evaluation, train_outputs) if kind == "regression" else None
    positive_rate = None
    if y is not None and kind != "regression":
        encoded = encode_target(target_array(y, "y"), kind, classes, "y")
        positive_rate = float(encoded.mean()) if kind == "binary_classification" else None
    # The target column's name (a holdout CSV for the gate carries it): y's, else the holdout's.
    name = getattr(y, "name", None) or getattr(eval_set[1] if eval_set else None, "name", None)
    return InspectedModel(
        kind,
        frame,
        schema,
        model_input,
        classes,
        train_outputs,
        evaluation,
        target_range,
        positive_rate,
        str(name) if name is not None else "target",
    )
