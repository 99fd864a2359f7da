"""The ``lambdaserve`` command.

Exit codes: 0 success, 1 a refused operation, 2 usage errors, 3 the promotion gate kept a
candidate out, 4 ``status`` found the registry and the live alias disagreeing, 5 a rollout was
rolled back, 6 a rollout was aborted because someone else changed the alias.
"""

from __future__ import annotations

import typer

from lambdaserve.cli import (
    ab_report_command,
    demo_command,
    drift_commands,
    import_command,
    predict_command,
    prune_command,
    registry_commands,
    rollout_commands,
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
app.command("import")(import_command.import_)
app.command("register")(registry_commands.register)
app.add_typer(registry_commands.models_app, name="models")
app.command("publish")(registry_commands.publish)
app.command("status")(registry_commands.status)
app.command("prune")(prune_command.prune)
app.add_typer(rollout_commands.rollout_app, name="rollout")
rollout_commands.ab_app.command("report")(ab_report_command.report)
app.add_typer(rollout_commands.ab_app, name="ab")
app.add_typer(drift_commands.drift_app, name="drift")


def main() -> None:
    app()
