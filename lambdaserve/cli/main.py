"""The ``lambdaserve`` command. Exit codes: 0 success, 1 a refused operation, 2 usage errors."""

from __future__ import annotations

import typer

from lambdaserve.cli import (
    demo_command,
    predict_command,
    serve_command,
    synth_command,
    train_command,
)

app = typer.Typer(
    name="lambdaserve",
    help="Train, bundle, serve and roll out scikit-learn models on AWS Lambda (or locally).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("train")(train_command.train)
app.command("serve")(serve_command.serve)
app.command("predict")(predict_command.predict)
app.command("demo")(demo_command.demo)
app.command("synth")(synth_command.synth)


def main() -> None:
    app()
