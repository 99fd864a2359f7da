"""``lambdaserve prune``: delete old published versions of a model's function that nothing
routes and the registry does not need, keeping the newest ``--keep``."""

from __future__ import annotations

from typing import Annotated

import typer

from lambdaserve.cli.backends import Backend, BackendOption, FunctionOption, open_function
from lambdaserve.cli.options import KEEP_VERSIONS_ENV, JsonOption, StoreOption
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.rollout.pruning import prune_versions
from lambdaserve.views.console import err, fail, out
from lambdaserve.views.pruning import prune_table, untagged_note

KeepOption = Annotated[
    int,
    typer.Option(
        "--keep",
        min=1,
        envvar=KEEP_VERSIONS_ENV,
        help="How many of the newest published versions to keep, besides the ones the live "
        "alias routes and the registry's champion and challenger",
        show_default=False,
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Delete nothing; report what would be deleted")
]


def prune(
    name: Annotated[str, typer.Argument(help="Model name")],
    keep: KeepOption,
    dry_run: DryRunOption = False,
    store: StoreOption = None,
    backend: BackendOption = Backend.local,
    function: FunctionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete old published versions of the model's function: never one the live alias routes
    (re-read before each deletion), nor the registry's champion or challenger, nor the --keep
    newest. Exit 1 when a deletion failed (the ones before it stay done)."""
    try:
        wired = open_function(store, backend, function=function, model=name)
        report = prune_versions(
            wired.publisher,
            wired.registry,
            name,
            keep,
            dry_run,
            function_name=wired.function_name,
        )
    except LambdaserveError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(report.model_dump_json())
    else:
        out.print(prune_table(report))
        note = untagged_note(report)
        if note:
            err.print(note, highlight=False)
    if report.error:
        fail(report.error)
