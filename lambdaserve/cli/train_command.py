"""``lambdaserve train``: run the SageMaker-contract training job locally and store the bundle."""

from __future__ import annotations

import json
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
from lambdaserve.views.training import train_model
from lambdaserve.wiring.local import open_local


def train(
    data: Annotated[
        Path, typer.Option("--data", help="CSV or Parquet file (or a directory of them)")
    ],
    target: Annotated[str, typer.Option("--target", help="Target column")],
    task: Annotated[
        str,
        typer.Option(
            "--task",
            help="auto | binary | multiclass | regression (auto decides from the target: README)",
        ),
    ] = "auto",
    drop: Annotated[
        list[str] | None, typer.Option("--drop", help="Column to leave out (repeatable)")
    ] = None,
    estimator: Annotated[
        str,
        typer.Option(
            "--estimator",
            help="random_forest | hist_gradient_boosting | logistic_regression (classification) "
            "| ridge (regression)",
        ),
    ] = "random_forest",
    name: Annotated[str, typer.Option("--name", help="Model name")] = "model",
    hyperparameter: Annotated[
        list[str] | None, typer.Option("--hp", help="Extra hyperparameter KEY=VALUE (repeatable)")
    ] = None,
    store: StoreOption = None,
    register: RegisterOption = True,
    holdout: HoldoutOption = None,
    gate: PolicyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train under the SageMaker script-mode contract, store the verified bundle, register it."""
    hyperparameters: dict[str, object] = {
        "target": target,
        "task": task,
        "drop": list(drop or []),
        "estimator": estimator,
        "model_name": name,
    }
    for item in hyperparameter or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--hp expects KEY=VALUE, got {item!r}", code=2)
        try:
            hyperparameters[key] = json.loads(value)
        except json.JSONDecodeError:
            hyperparameters[key] = value
    try:
        stored = train_model(open_local(store), data, hyperparameters, progress=not as_json)
    except LambdaserveError as exc:
        fail(str(exc))
    register_and_report(
        stored, store=store, register=register, holdout=holdout, gate=gate, as_json=as_json
    )
