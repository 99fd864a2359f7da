"""Hyperparameters with SageMaker script-mode semantics.

SageMaker passes hyperparameters three ways: the ``SM_HPS`` environment variable (a JSON object),
``/opt/ml/input/config/hyperparameters.json`` (every value a string, JSON-encoded by the SDK), and
``--key value`` command-line arguments. We read them in that order, later sources winning.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lambdaserve.kernel.errors import TrainingError

EstimatorName = Literal["random_forest", "hist_gradient_boosting", "logistic_regression", "ridge"]
ESTIMATORS: tuple[str, ...] = (
    "random_forest",
    "hist_gradient_boosting",
    "logistic_regression",
    "ridge",
)
#: What the model is asked to learn; ``auto`` decides from the target (``training.targets``).
TaskChoice = Literal["auto", "binary", "multiclass", "regression"]
TASK_CHOICES: tuple[str, ...] = ("auto", "binary", "multiclass", "regression")


class TrainingConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str = Field(min_length=1)
    task: TaskChoice = "auto"
    drop: tuple[str, ...] = ()
    estimator: EstimatorName = "random_forest"
    model_name: str = Field(default="model", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    model_version: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    positive_class: str | None = None
    numeric_columns: tuple[str, ...] = ()
    categorical_columns: tuple[str, ...] = ()
    test_size: float = Field(default=0.2, gt=0.05, lt=0.5)
    cv_folds: int = Field(default=5, ge=2, le=10)
    random_state: int = 0
    n_estimators: int = Field(default=100, ge=1, le=2000)
    max_depth: int | None = Field(default=10, ge=1)
    learning_rate: float = Field(default=0.1, gt=0.0, le=1.0)
    max_iter: int = Field(default=200, ge=1, le=5000)
    C: float = Field(default=1.0, gt=0.0)
    alpha: float = Field(default=1.0, ge=0.0)
    onnx: bool = True
    parity_tolerance: float = Field(default=1e-5, gt=0.0, le=0.1)

    @field_validator("drop", "numeric_columns", "categorical_columns", mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


_TEXT_FIELDS = frozenset({"target", "model_name", "model_version", "positive_class"})


def _decode(key: str, value: object) -> object:
    """The SDK JSON-encodes every value as a string; plain strings pass through unchanged.

    Text fields keep their text even when it looks like a number (``model_version=1`` is "1").
    """
    if not isinstance(value, str):
        return str(value) if key in _TEXT_FIELDS and not isinstance(value, bool) else value
    try:
        decoded = json.loads(value)
    except json.JSONDecodeError:
        return value
    if key in _TEXT_FIELDS and not isinstance(decoded, str):
        return value
    return decoded


def _parse_argv(argv: Sequence[str]) -> dict[str, object]:
    values: dict[str, object] = {}
    args = list(argv)
    while args:
        key = args.pop(0)
        if not key.startswith("--"):
            raise TrainingError(f"unexpected argument {key!r}: hyperparameters are --name value")
        name = key[2:].replace("-", "_")
        if "=" in name:
            name, value = name.split("=", 1)
        elif args and not args[0].startswith("--"):
            value = args.pop(0)
        else:
            raise TrainingError(f"hyperparameter --{name} needs a value")
        values[name] = value
    return values


def load_hyperparameters(
    environ: Mapping[str, str] | None = None, argv: Sequence[str] = ()
) -> TrainingConfig:
    environ = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    config_dir = Path(environ.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config"))
    hyperparameters_file = config_dir / "hyperparameters.json"
    if "SM_HPS" in environ:
        raw.update(_load_json_object(environ["SM_HPS"], "SM_HPS"))
    elif hyperparameters_file.is_file():
        raw.update(_load_json_object(hyperparameters_file.read_text(), str(hyperparameters_file)))
    raw.update(_parse_argv(argv))
    decoded = {
        key.replace("-", "_"): _decode(key.replace("-", "_"), value) for key, value in raw.items()
    }
    # SageMaker adds its own sagemaker_* entries for framework containers; they are not ours.
    decoded = {k: v for k, v in decoded.items() if not k.startswith("sagemaker_")}
    try:
        return TrainingConfig.model_validate(decoded)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'hyperparameters'}: {err['msg']}"
            for err in exc.errors(include_input=False)
        )
        raise TrainingError(f"invalid hyperparameters: {problems}") from exc


def _load_json_object(text: str, source: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrainingError(f"{source} is not valid JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise TrainingError(f"{source} must hold a JSON object of hyperparameters")
    return value
