"""``lambdaserve register``, ``models``, ``publish`` and ``status``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lambdaserve.cli.backends import (
    Backend,
    BackendOption,
    BucketOption,
    FunctionOption,
    open_backends,
    open_function,
)
from lambdaserve.cli.options import (
    CodeOption,
    HoldoutOption,
    JsonOption,
    PolicyOption,
    StoreOption,
    TrustOption,
    parse_model_ref,
    serving_settings,
)
from lambdaserve.cli.registration import load_policy, register_locally
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.kernel.function_versions import LIVE_ALIAS
from lambdaserve.kernel.manifest import Task
from lambdaserve.registry.model_registry import TAG_GATE_RESULT
from lambdaserve.registry.registration import (
    promote_to_champion,
)
from lambdaserve.rollout.publishing import publish_model_version
from lambdaserve.rollout.status import Status, model_status
from lambdaserve.views.console import fail, out
from lambdaserve.wiring.local import open_local

ForceOption = Annotated[bool, typer.Option("--force", help="Pass the gate anyway (recorded)")]


def register(
    model: Annotated[str, typer.Argument(help="Stored bundle NAME or NAME:BUNDLE_VERSION")],
    store: StoreOption = None,
    holdout: HoldoutOption = None,
    gate: PolicyOption = None,
    force: ForceOption = False,
    code: CodeOption = None,
    trust: TrustOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a stored bundle in MLflow; it becomes challenger if it passes the gate."""
    name, bundle_version = parse_model_ref(model)
    try:
        gated = register_locally(
            store,
            name,
            bundle_version,
            holdout=holdout,
            policy=load_policy(gate),
            force=force,
            trust=serving_settings(code, trust).model_trust(),
        )
    except LambdaserveError as exc:
        fail(str(exc))
    version, decision, refusal = gated.version, gated.decision, gated.refusal
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "name": version.name,
                    "version": version.version,
                    "created": gated.created,
                    "aliases": list(version.aliases),
                    "bundle_uri": version.bundle_uri,
                    "bundle_sha256": version.bundle_sha256,
                    "gate": decision.model_dump(mode="json") if decision else None,
                    "refusal": refusal,
                }
            )
        )
    else:
        verb = "registered" if gated.created else "already registered as"
        out.print(f"{verb} {version.name} v{version.version} ({version.bundle_sha256[:12]})")
        out.print(
            f"gate: {'; '.join(decision.reasons)}" if decision else f"gate: {refusal}",
            highlight=False,
        )
    if refusal is not None:
        raise typer.Exit(3)


models_app = typer.Typer(
    help="List, show and promote registered model versions.", no_args_is_help=False
)


@models_app.callback(invoke_without_command=True)
def models(
    context: typer.Context,
    store: StoreOption = None,
) -> None:
    """List registered models and their versions."""
    if context.invoked_subcommand is not None:
        return
    try:
        registry = open_local(store).registry
        table = Table(title="registered models")
        for column in ("model", "version", "task", "aliases", "bundle", "lambda", "metric", "gate"):
            table.add_column(column)
        for name in registry.models():
            for v in registry.versions(name):
                table.add_row(
                    name,
                    v.version,
                    v.task.removesuffix("_classification"),
                    ", ".join(v.aliases),
                    v.bundle_version or "?",
                    v.lambda_version or "-",
                    _headline(v.task, v.metrics),
                    v.tags.get(TAG_GATE_RESULT, "-"),
                )
    except LambdaserveError as exc:
        fail(str(exc))
    out.print(table)


#: The one holdout metric ``models`` lists per task.
HEADLINE_METRIC = {
    "binary_classification": "roc_auc",
    "multiclass_classification": "macro_f1",
    "regression": "rmse",
}


def _headline(task: Task, metrics: dict[str, float]) -> str:
    name = HEADLINE_METRIC[task]
    return f"{name} {metrics[name]:.4f}" if name in metrics else "-"


@models_app.command("show")
def show(
    model: Annotated[str, typer.Argument(help="NAME:VERSION (registry version)")],
    store: StoreOption = None,
) -> None:
    """Everything about one registered version, as JSON."""
    name, version = parse_model_ref(model)
    try:
        registry = open_local(store).registry
        found = registry.get(name, version) if version else registry.versions(name)[-1]
    except (LambdaserveError, IndexError) as exc:
        fail(str(exc) or f"no versions of {name}")
    typer.echo(
        json.dumps(
            {
                "name": found.name,
                "version": found.version,
                "aliases": list(found.aliases),
                "bundle_uri": found.bundle_uri,
                "bundle_sha256": found.bundle_sha256,
                "bundle_version": found.bundle_version,
                "lambda_version": found.lambda_version,
                "metrics": found.metrics,
                "tags": found.tags,
                "run_id": found.run_id,
            },
            indent=2,
        )
    )


@models_app.command("promote")
def promote(
    model: Annotated[str, typer.Argument(help="NAME:VERSION to make champion")],
    store: StoreOption = None,
) -> None:
    """Make a version the champion (the registry alias; traffic moves with `rollout`)."""
    name, version = parse_model_ref(model)
    if version is None:
        fail("give NAME:VERSION", code=2)
    try:
        promoted = promote_to_champion(open_local(store).registry, name, version)
    except LambdaserveError as exc:
        fail(str(exc))
    out.print(f"{promoted.name} v{promoted.version} is now champion")


def publish(
    model: Annotated[str, typer.Argument(help="NAME:VERSION (registry version) to publish")],
    store: StoreOption = None,
    backend: BackendOption = Backend.local,
    function: FunctionOption = None,
    bucket: BucketOption = None,
) -> None:
    """Publish a function version pinned to the model version's bundle (idempotent)."""
    name, version = parse_model_ref(model)
    if version is None:
        fail("give NAME:VERSION", code=2)
    try:
        wired = open_backends(store, backend, function=function, bucket=bucket, model=name)
        done = publish_model_version(
            wired.registry,
            wired.store,
            wired.target_store,
            wired.publisher,
            name,
            version,
            function_name=wired.function_name,
        )
    except LambdaserveError as exc:
        fail(str(exc))
    state = "published" if done.created else "already published"
    out.print(
        f"{name} v{version} {state} as {wired.function_name} version "
        f"{done.published.function_version} ({done.published.bundle_uri})",
        highlight=False,
    )
    if done.deployed is not None:
        out.print(
            f"first deployment: {LIVE_ALIAS} now sends 100% to version "
            f"{done.deployed.version} (champion {name} v{version}); rollouts move it from here",
            highlight=False,
        )
    elif done.undeployed is not None:
        out.print(f"note: {done.undeployed}", highlight=False)


def status(
    name: Annotated[
        str | None, typer.Argument(help="Model name [default: every model a local alias serves]")
    ] = None,
    store: StoreOption = None,
    backend: BackendOption = Backend.local,
    function: FunctionOption = None,
) -> None:
    """Registry aliases next to the live alias's routing; exit 4 when they disagree."""
    try:
        targets = [(name, function)] if name else _every_served_model(store, backend, function)
        reports = []
        for model_name, function_name in targets:
            wired = open_function(store, backend, function=function_name, model=model_name)
            report = model_status(wired.registry, wired.publisher, model_name)
            reports.append((model_name, wired.function_name, report))
    except LambdaserveError as exc:
        fail(str(exc))
    for model_name, function_name, report in reports:
        _print_status(model_name, function_name, report)
    if any(report.problems for _, _, report in reports):
        raise typer.Exit(4)


def _every_served_model(
    store: Path | None, backend: Backend, function: str | None
) -> list[tuple[str, str | None]]:
    """Every model a local function's live alias serves, with its function."""
    if backend is not Backend.local or function is not None:
        raise LambdaserveError("name the model: lambdaserve status NAME")
    served = open_local(store).served_models()
    if not served:
        raise LambdaserveError("no local function has a live alias yet: lambdaserve publish")
    return sorted(served.items())


def _print_status(name: str, function_name: str, report: Status) -> None:
    table = Table(title=f"{name}: live alias of {function_name}")
    for column in ("function version", "share", "model version", "aliases"):
        table.add_column(column)
    for route in report.routes:
        table.add_row(
            route.function_version,
            f"{route.share:.0%}",
            route.model.version if route.model else "?",
            ", ".join(route.model.aliases) if route.model else "",
        )
    out.print(table)
    for alias, version in sorted(report.aliases.items()):
        out.print(
            f"  {alias}: v{version.version} (function version "
            f"{version.lambda_version or 'unpublished'})"
        )
    for problem in report.problems:
        out.print(f"  [red]mismatch:[/] {problem}", highlight=False)
