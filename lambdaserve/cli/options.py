"""Options several commands share, so they are spelled the same everywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from lambdaserve.serving.settings import ServingSettings

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store", help="Local store directory [default: $LAMBDASERVE_HOME or ./.lambdaserve]"
    ),
]

HoldoutOption = Annotated[
    Path | None,
    typer.Option(
        "--holdout", help="CSV with the target; candidate and champion are both scored on it"
    ),
]
PolicyOption = Annotated[
    Path | None,
    typer.Option("--gate", help="JSON gate policy: minimums, maximums, compare, tolerance"),
]
RegisterOption = Annotated[
    bool, typer.Option("--register/--no-register", help="Register in MLflow and run the gate")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object")]
#: How many of a function's newest published versions pruning keeps (``prune --keep``, and
#: ``--keep-versions`` on the commands that end a rollout).
KEEP_VERSIONS_ENV = "LAMBDASERVE_KEEP_VERSIONS"
KeepVersionsOption = Annotated[
    int | None,
    typer.Option(
        "--keep-versions",
        min=1,
        envvar=KEEP_VERSIONS_ENV,
        help="Once the rollout is promoted or rolled back, prune the function's published "
        "versions down to this many newest (besides the routed ones, champion and challenger); "
        "unset, nothing is pruned",
        show_default=False,
    ),
]
CodeOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--code",
        help="Directory of your own model code (repeatable): importable, and the types its "
        "top-level modules define are trusted when a model file holds them",
        envvar="LAMBDASERVE_CODE",
    ),
]
TrustOption = Annotated[
    list[str] | None,
    typer.Option(
        "--trust",
        help="A type (module.Class) a model file may hold beyond scikit-learn's (repeatable)",
        envvar="LAMBDASERVE_TRUSTED_TYPES",
    ),
]


def serving_settings(
    code: list[Path] | None = None, trust: list[str] | None = None
) -> ServingSettings:
    """The prediction service's settings from the environment, with ``--code`` and ``--trust``."""
    settings = ServingSettings()
    update: dict[str, frozenset[str]] = {}
    if code:
        update["code_dirs"] = settings.code_dirs | {str(d) for d in code}
    if trust:
        update["trusted_types"] = settings.trusted_types | set(trust)
    return settings.model_copy(update=update) if update else settings


def parse_model_ref(ref: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME:VERSION``."""
    name, _, version = ref.partition(":")
    if not name:
        raise typer.BadParameter("expected NAME or NAME:VERSION", param_hint="--model")
    return name, version or None


def parse_time(value: str, hint: str) -> datetime:
    """An ISO 8601 time; without an offset it is UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint=hint) from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
