"""``lambdaserve serve``: the prediction API on uvicorn, loopback by default."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from lambdaserve.cli.console import err, fail
from lambdaserve.cli.options import StoreOption, open_store, parse_model_ref
from lambdaserve.core.errors import LambdaserveError
from lambdaserve.local.artifact_store import LocalArtifactStore
from lambdaserve.serving.app import create_app
from lambdaserve.serving.model_loader import LoadedModel
from lambdaserve.serving.settings import ServingSettings


def resolve_model(store: LocalArtifactStore, ref: str | None) -> LoadedModel:
    """Load ``NAME[:VERSION]`` from the store; without a ref, the only model's latest version."""
    if ref is None:
        models = store.models()
        if len(models) != 1:
            listed = ", ".join(models) or "none (run `lambdaserve train` first)"
            raise LambdaserveError(f"choose a model with --model NAME[:VERSION]; stored: {listed}")
        ref = models[0]
    name, version = parse_model_ref(ref)
    return LoadedModel.from_bundle(store.open(name, version))


def serve(
    store: StoreOption = None,
    model: Annotated[str | None, typer.Option("--model", help="NAME or NAME:VERSION")] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0 picks a free one)")] = 8080,
) -> None:
    """Serve a stored model over HTTP (GET /health, GET /model, POST /predict, /predict/batch)."""
    try:
        loaded = resolve_model(open_store(store), model)
    except LambdaserveError as exc:
        fail(str(exc))
    app = create_app(loaded, settings=ServingSettings())
    err.print(
        f"serving [bold]{loaded.name}[/] version {loaded.version} ({loaded.predictor.runtime}) "
        f"on http://{host}:{port}  (docs at /docs)",
        highlight=False,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
