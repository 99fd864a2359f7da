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
from lambdaserve.cli.registry_commands import load_policy, register_locally
from lambdaserve.kernel.artifacts import StoredBundle
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.views.console import fail, out
from lambdaserve.views.training import print_summary, summary, train_model
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


def register_and_report(
    stored: StoredBundle,
    *,
    store: Path | None,
    register: bool,
    holdout: Path | None,
    gate: Path | None,
    as_json: bool,
) -> None:
    """Register a freshly stored bundle and run the gate (unless ``register`` is off), then print
    the bundle's summary and the registry's answer."""
    try:
        registration = (
            register_locally(
                store,
                stored.name,
                stored.version,
                holdout=holdout,
                policy=load_policy(gate),
                force=False,
            )
            if register
            else None
        )
    except LambdaserveError as exc:
        fail(str(exc))
    result = summary(stored)
    if registration is not None:
        decision = registration.decision
        result["registry"] = {
            "version": registration.version.version,
            "aliases": list(registration.version.aliases),
            "gate": decision.model_dump(mode="json") if decision else None,
            "refusal": registration.refusal,
        }
    if as_json:
        typer.echo(json.dumps(result))
        return
    print_summary(stored)
    if registration is not None:
        version, decision = registration.version, registration.decision
        aliases = f" ({', '.join(version.aliases)})" if version.aliases else ""
        out.print(
            f"  registered as {version.name} v{version.version}{aliases}; gate: "
            + ("; ".join(decision.reasons) if decision else str(registration.refusal)),
            highlight=False,
        )
