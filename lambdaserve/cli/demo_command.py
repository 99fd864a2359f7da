"""``lambdaserve demo``: run the demo story (``lambdaserve.demo``) on the local store."""

from __future__ import annotations

from typing import Annotated

import typer

from lambdaserve.cli.options import StoreOption
from lambdaserve.demo.story import run_demo
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.views.console import fail, out
from lambdaserve.wiring.local import open_local


def demo(
    store: StoreOption = None,
    rows: Annotated[int, typer.Option("--rows", min=200, help="Training rows to generate")] = 5000,
    traffic_rows: Annotated[int, typer.Option("--traffic-rows", min=1, help="Rows to send")] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Run the local lifecycle end to end on synthetic customer-churn data."""
    try:
        problems = run_demo(open_local(store), rows, traffic_rows, seed)
    except LambdaserveError as exc:
        fail(str(exc))
    if problems:
        fail("; ".join(problems))
    out.print(
        "[green]demo finished: every request answered as expected, v2 promoted, v3 rolled "
        "back, the shifted features flagged as drift[/]"
    )
