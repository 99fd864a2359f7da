"""What a user's fitted scikit-learn model is: its task, classes, fitted columns and outputs.

Every refusal names the problem and what to do, before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from lambdaserve.kernel.errors import ModelSaveError
from lambdaserve.kernel.manifest import ClassLabel, EstimatorInfo, Task

#: The task names a user may pass, short or as the manifest spells them.
TASK_ALIASES: dict[str, Task] = {
    "binary": "binary_classification",
    "binary_classification": "binary_classification",
    "multiclass": "multiclass_classification",
    "multiclass_classification": "multiclass_classification",
    "regression": "regression",
}


def final_estimator(model: object) -> object:
    return model.steps[-1][1] if isinstance(model, Pipeline) else model


def _check_fitted(model: object) -> None:
    if not hasattr(model, "predict"):
        raise ModelSaveError(
            f"{type(model).__name__} has no predict method: lambdaserve serves classifiers and "
            "regressors (a transformer alone is not a model)"
        )
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise ModelSaveError(
            f"{type(model).__name__} is not fitted: call fit(X, y) before save_model"
        ) from None
    except TypeError as exc:
        raise ModelSaveError(
            f"{type(model).__name__} is not a scikit-learn estimator ({exc})"
        ) from exc


def model_task(model: object, requested: str | None) -> Task:
    """The task the fitted ``model`` performs, checked against ``requested`` when given."""
    _check_fitted(model)
    if is_classifier(model):
        classes = len(model.classes_)  # type: ignore[attr-defined]
        if classes < 2:
            raise ModelSaveError("the classifier was fitted on a single class")
        if not hasattr(model, "predict_proba"):
            raise ModelSaveError(
                f"{type(final_estimator(model)).__name__} has no predict_proba: serving answers "
                "class probabilities (wrap it in CalibratedClassifierCV, or use probability=True)"
            )
        found: Task = "binary_classification" if classes == 2 else "multiclass_classification"
    elif is_regressor(model):
        found = "regression"
    else:
        raise ModelSaveError(
            f"{type(final_estimator(model)).__name__} is neither a classifier nor a regressor "
            "(a clusterer?): lambdaserve serves models that predict a class or a number"
        )
    if requested is None:
        return found
    task = TASK_ALIASES.get(requested)
    if task is None:
        raise ModelSaveError(f"task {requested!r} is not one of {sorted(TASK_ALIASES)}")
    if task != found:
        raise ModelSaveError(f"task {requested!r} was asked for, but the model does {found}")
    return task


def _label(value: object) -> ClassLabel:
    item = value.item() if isinstance(value, np.generic) else value
    if isinstance(item, float) and item.is_integer():
        return int(item)
    if isinstance(item, str | int | bool):
        return item
    raise ModelSaveError(f"class {value!r} is not text, an integer or a boolean")


def model_classes(model: object) -> tuple[ClassLabel, ...]:
    return tuple(_label(c) for c in model.classes_)  # type: ignore[attr-defined]


def fitted_names(model: object) -> list[str]:
    """The column names the model was fitted on; a model fitted on an array has none."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        raise ModelSaveError(
            f"{type(model).__name__} was fitted on a numpy array, so it records no column names "
            "for the API's fields: fit it on a pandas DataFrame (the X you pass to save_model)"
        )
    return [str(n) for n in names]


def frame_outputs(
    model: object, frame: pd.DataFrame, task: Task, what: str
) -> npt.NDArray[np.float64]:
    """Class probabilities ``(n, n_classes)`` or predictions ``(n,)`` on ``frame``."""
    try:
        if task == "regression":
            values = np.asarray(model.predict(frame), dtype=np.float64).reshape(-1)  # type: ignore[attr-defined]
        else:
            values = np.asarray(model.predict_proba(frame), dtype=np.float64)  # type: ignore[attr-defined]
    except Exception as exc:  # the user's model may raise anything
        raise ModelSaveError(
            f"the model could not predict on {what}: {type(exc).__name__}: {exc}"
        ) from exc
    if not np.isfinite(values).all():
        raise ModelSaveError(f"the model's outputs on {what} are not all finite numbers")
    return values


def encode_target(
    y: npt.NDArray[np.generic], task: Task, classes: Sequence[ClassLabel], what: str
) -> npt.NDArray[np.generic]:
    """Class indices into ``classes`` (classification) or float64 numbers (regression)."""
    if task == "regression":
        try:
            return y.astype(np.float64)
        except (TypeError, ValueError):
            raise ModelSaveError(f"{what} holds values that are not numbers") from None
    index = {label: i for i, label in enumerate(classes)}
    labels = [_label(v) for v in y]
    unknown = sorted({str(v) for v in labels if v not in index})
    if unknown:
        raise ModelSaveError(f"{what} holds classes the model does not know: {unknown[:5]}")
    return np.array([index[v] for v in labels], dtype=np.int64)


def estimator_info(model: object) -> EstimatorInfo:
    estimator = final_estimator(model)
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    simple = {
        key: value
        for key, value in params.items()
        if value is None or isinstance(value, str | int | float | bool)
    }
    kind = type(estimator)
    return EstimatorInfo(name=f"{kind.__module__}.{kind.__qualname__}", params=simple)
