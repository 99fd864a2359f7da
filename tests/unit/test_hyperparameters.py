"""Hyperparameters with SageMaker semantics: SM_HPS, hyperparameters.json, --key value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdaserve.kernel.errors import TrainingError
from lambdaserve.training.hyperparameters import load_hyperparameters

pytestmark = pytest.mark.unit


def test_sm_hps_json_object() -> None:
    config = load_hyperparameters(
        {"SM_HPS": json.dumps({"target": "y", "n_estimators": 50, "drop": ["id", "ts"]})}
    )
    assert (config.target, config.n_estimators, config.drop) == ("y", 50, ("id", "ts"))


def test_hyperparameters_file_with_sdk_string_encoding(tmp_path: Path) -> None:
    # The SageMaker SDK JSON-encodes each value into a string.
    encoded = {
        "target": '"churned"',
        "n_estimators": "200",
        "drop": '["id"]',
        "model_version": "7",
        "onnx": "false",
        "sagemaker_program": '"train.py"',
    }
    (tmp_path / "hyperparameters.json").write_text(json.dumps(encoded))
    config = load_hyperparameters({"SM_INPUT_CONFIG_DIR": str(tmp_path)})
    assert config.target == "churned"
    assert config.n_estimators == 200
    assert config.drop == ("id",)
    assert config.model_version == "7"
    assert config.onnx is False


def test_command_line_overrides_and_comma_lists() -> None:
    config = load_hyperparameters(
        {"SM_HPS": json.dumps({"target": "y", "estimator": "random_forest"})},
        ["--estimator", "logistic_regression", "--drop=a,b", "--C", "0.5"],
    )
    assert (config.estimator, config.drop, config.C) == ("logistic_regression", ("a", "b"), 0.5)


def test_task_and_alpha_default_and_arrive_every_way(tmp_path: Path) -> None:
    defaults = load_hyperparameters({"SM_HPS": json.dumps({"target": "y"})})
    assert (defaults.task, defaults.alpha) == ("auto", 1.0)
    (tmp_path / "hyperparameters.json").write_text(
        json.dumps(
            {"target": '"y"', "task": '"regression"', "estimator": '"ridge"', "alpha": "0.3"}
        )
    )
    encoded = load_hyperparameters({"SM_INPUT_CONFIG_DIR": str(tmp_path)})
    assert (encoded.task, encoded.estimator, encoded.alpha) == ("regression", "ridge", 0.3)
    argv = load_hyperparameters({"SM_HPS": json.dumps({"target": "y"})}, ["--task", "multiclass"])
    assert argv.task == "multiclass"


@pytest.mark.parametrize(
    ("hps", "message"),
    [
        ({}, "target: Field required"),
        ({"target": "y", "task": "ranking"}, "task: Input should be 'auto', 'binary'"),
        ({"target": "y", "alpha": -1}, "alpha: Input should be greater than or equal to 0"),
        ({"target": "y", "estimator": "svm"}, "estimator: Input should be"),
        ({"target": "y", "n_estimators": 0}, "n_estimators: Input should be greater"),
        ({"target": "y", "unknown": 1}, "unknown: Extra inputs are not permitted"),
    ],
)
def test_invalid_hyperparameters_are_named(hps: dict[str, object], message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        load_hyperparameters({"SM_HPS": json.dumps(hps)})


def test_broken_json_is_a_clear_error() -> None:
    with pytest.raises(TrainingError, match="SM_HPS is not valid JSON"):
        load_hyperparameters({"SM_HPS": "{target: y"})


def test_dangling_flag_is_a_clear_error() -> None:
    with pytest.raises(TrainingError, match="--target needs a value"):
        load_hyperparameters({}, ["--target"])
