"""``lambdaserve serve``: the prediction API on uvicorn, loopback by default.

With ``--model`` it serves that stored model. Without it, a function with a ``live`` alias is
served through the local gateway (the alias's versions and weights, followed without restart);
otherwise the store's only model is served. Either way every prediction is captured as JSONL
under ``<store>/captures/model=<name>/dt=YYYY-MM-DD/hour=HH/`` (``CAPTURE_ENABLED=false`` turns
it off).
"""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn
from rich.markup import escape
from starlette.types import ASGIApp

from lambdaserve.cli.options import (
    CodeOption,
    StoreOption,
    TrustOption,
    parse_model_ref,
    serving_settings,
)
from lambdaserve.kernel.artifacts import ArtifactStore
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.kernel.function_versions import LIVE_ALIAS, AliasRouting, FunctionPublisher
from lambdaserve.kernel.model_trust import NO_TRUST, ModelTrust
from lambdaserve.serving.model_loader import LoadedModel
from lambdaserve.views.console import err, fail
from lambdaserve.wiring.local import LocalBackend, open_local


def resolve_model(
    store: ArtifactStore, ref: str | None, trust: ModelTrust = NO_TRUST
) -> LoadedModel:
    """Load ``NAME[:VERSION]`` from the store; without a ref, the only model's latest version."""
    if ref is None:
        models = store.models()
        if len(models) != 1:
            listed = ", ".join(models) or "none (run `lambdaserve train` first)"
            raise LambdaserveError(f"choose a model with --model NAME[:VERSION]; stored: {listed}")
        ref = models[0]
    name, version = parse_model_ref(ref)
    return LoadedModel.from_bundle(store.open(name, version), trust=trust)


def _served(local: LocalBackend, model: str | None, function: str | None) -> dict[str, str]:
    """``{model: function}`` to serve through the gateway: every function's live alias, or
    ``--function``'s alone; empty when a stored model is served directly (``--model``)."""
    if model is not None:
        return {}
    if function is None:
        return local.served_models()
    model_name = local.served_model(function)
    return {model_name: function} if model_name else {}


def describe_routing(functions: FunctionPublisher, name: str, routing: AliasRouting) -> str:
    described = {v.function_version: v.description for v in functions.versions()}
    routes = ", ".join(
        f"version {version} ({described.get(version) or 'no description'}) {share:.0%}"
        for version, share in routing.shares().items()
    )
    return f"function {name}, alias {routing.alias}: {routes}"


def serve(
    store: StoreOption = None,
    model: Annotated[str | None, typer.Option("--model", help="NAME or NAME:VERSION")] = None,
    function: Annotated[
        str | None,
        typer.Option(
            "--function", help="Serve only this local function's live alias (unprefixed routes)"
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0 picks a free one)")] = 8080,
    code: CodeOption = None,
    trust: TrustOption = None,
) -> None:
    """Serve a stored model over HTTP (GET /health, GET /model, POST /predict, /predict/batch).

    Without --model, every model a local function's live alias serves is served through the
    local gateway on /models/NAME/... (and on the unprefixed routes when there is one): each
    request goes to one of the alias's versions by its weight (sticky per X-Unit-Id header).
    """
    try:
        settings = serving_settings(code, trust)
        local = open_local(store)
        served = _served(local, model, function)
        loaded = None if served else resolve_model(local.store, model, settings.model_trust())
    except LambdaserveError as exc:
        fail(str(exc))
    app: ASGIApp
    if loaded is None:
        app = local.model_router(served, settings)
        for name, function_name in sorted(served.items()):
            functions = local.functions(function_name)
            routing = functions.alias(LIVE_ALIAS)
            assert routing is not None  # _served keeps only functions with a live alias
            err.print(
                f"serving {escape(describe_routing(functions, function_name, routing))} at "
                f"http://{host}:{port}/models/{escape(name)}/",
                highlight=False,
            )
        err.print(
            "through the local gateway (alias changes apply without restart; docs at "
            "/models/NAME/docs" + (", and /docs" if len(served) == 1 else "") + ")",
            highlight=False,
        )
    else:
        app = local.model_app(loaded, settings)
        err.print(
            f"serving [bold]{loaded.name}[/] version {loaded.version} ({loaded.predictor.runtime}) "
            f"on http://{host}:{port}  (docs at /docs)",
            highlight=False,
        )
    if settings.capture_enabled:
        err.print(f"capturing predictions under {escape(str(local.root / 'captures'))}")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
