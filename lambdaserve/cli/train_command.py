"""``lambdaserve train``: run the SageMaker-contract training job locally (the built-in job, or
your own script with ``--script``) and store the bundle, then register it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from lambdaserve.cli.options import (
    HoldoutOption,
    JsonOption,
    PolicyOption,
    RegisterOption,
    StoreOption,
)
from lambdaserve.cli.registration import register_and_report
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.views.console import fail
from lambdaserve.views.training import train_model, train_script_model
from lambdaserve.wiring.local import open_local

#: The built-in job's defaults; with --script only the options given are passed on.
BUILT_IN_DEFAULTS: dict[str, object] = {"task": "auto", "estimator": "random_forest", "drop": []}

DataOption = Annotated[
    Path, typer.Option("--data", help="CSV or Parquet file (or a directory of them)")
]
TargetOption = Annotated[
    str | None,
    typer.Option("--target", help="Target column (required by the built-in job, not --script)"),
]
TaskOption = Annotated[
    str | None,
    typer.Option(
        "--task",
        help="auto | binary | multiclass | regression (auto decides from the target: README)",
        show_default="auto",
    ),
]
DropOption = Annotated[
    list[str] | None, typer.Option("--drop", help="Column to leave out (repeatable)")
]
EstimatorOption = Annotated[
    str | None,
    typer.Option(
        "--estimator",
        help="random_forest | hist_gradient_boosting | logistic_regression (classification) "
        "| ridge (regression)",
        show_default="random_forest",
    ),
]
NameOption = Annotated[str, typer.Option("--name", help="Model name")]
HyperparameterOption = Annotated[
    list[str] | None, typer.Option("--hp", help="Extra hyperparameter KEY=VALUE (repeatable)")
]
ScriptOption = Annotated[
    Path | None,
    typer.Option(
        "--script",
        help="Your training script, run under the SageMaker script-mode contract instead of the "
        "built-in job; it ends with lambdaserve.save_model(..., path=os.environ['SM_MODEL_DIR'])",
    ),
]
SourceDirOption = Annotated[
    Path | None,
    typer.Option(
        "--source-dir",
        help="Directory copied to /opt/ml/code with --script (its requirements.txt must be "
        "installed already)",
        show_default="the script's directory",
    ),
]


def parse_hyperparameters(items: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` pairs; a value that parses as JSON is taken as such (``20`` is a number)."""
    parsed: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--hp expects KEY=VALUE, got {item!r}", code=2)
        try:
            parsed[key] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key] = value
    return parsed


def job_hyperparameters(
    name: str, options: Mapping[str, object], *, script: bool
) -> dict[str, object]:
    """The built-in job's options with their defaults; for a script only those given."""
    given = {key: value for key, value in options.items() if value not in (None, [])}
    if script:
        return {**given, "model_name": name}
    if "target" not in given:
        fail("--target is required (the target column), unless you train with --script", code=2)
    return {**BUILT_IN_DEFAULTS, **given, "model_name": name}


def train(
    data: DataOption,
    target: TargetOption = None,
    task: TaskOption = None,
    drop: DropOption = None,
    estimator: EstimatorOption = None,
    name: NameOption = "model",
    hyperparameter: HyperparameterOption = None,
    script: ScriptOption = None,
    source_dir: SourceDirOption = None,
    store: StoreOption = None,
    register: RegisterOption = True,
    holdout: HoldoutOption = None,
    gate: PolicyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train under the SageMaker script-mode contract, store the verified bundle, register it."""
    if source_dir is not None and script is None:
        fail("--source-dir goes with --script", code=2)
    options = {"target": target, "task": task, "drop": drop, "estimator": estimator}
    hyperparameters = job_hyperparameters(name, options, script=script is not None)
    hyperparameters.update(parse_hyperparameters(hyperparameter or []))
    backend = open_local(store)
    try:
        stored = (
            train_script_model(
                backend,
                script,
                data,
                hyperparameters,
                source_dir=source_dir,
                progress=not as_json,
            )
            if script is not None
            else train_model(backend, data, hyperparameters, progress=not as_json)
        )
    except LambdaserveError as exc:
        fail(str(exc))
    register_and_report(
        stored, store=store, register=register, holdout=holdout, gate=gate, as_json=as_json
    )
