"""One local API for every model a store serves: ``/models/{name}/...`` goes to the gateway of
the function whose ``live`` alias serves model ``name``, as the REST API routes each model's
paths to its own alias. With one model, the unprefixed routes answer too (a single-model stage's
API has them)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from lambdaserve.kernel.artifacts import path_from_uri
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.kernel.function_versions import LIVE_ALIAS
from lambdaserve.local.function_versions import LocalFunctionVersions
from lambdaserve.local.gateway import answer_json, lifespan

MODELS_PREFIX = "/models/"


def local_functions(root: Path) -> list[str]:
    """The names of the store's local functions (each published at least once)."""
    return sorted(p.stem for p in (Path(root) / "functions").glob("*.json"))


def served_model(functions: LocalFunctionVersions) -> str | None:
    """The model a function's ``live`` alias serves: the one its primary version's bundle is a
    version of (``<store>/models/<name>/<version>/bundle.tar.gz``); None without an alias."""
    routing = functions.alias(LIVE_ALIAS)
    if routing is None:
        return None
    published = {v.function_version: v for v in functions.versions()}[routing.version]
    return path_from_uri(published.bundle_uri).parent.parent.name


def models_by_function(root: Path) -> dict[str, str]:
    """``{model name: function name}`` for every function with a ``live`` alias; two functions
    serving one model are refused, naming both (which one would answer is undefined)."""
    served: dict[str, str] = {}
    for function in local_functions(root):
        model = served_model(LocalFunctionVersions(root, function))
        if model is None:
            continue
        if model in served:
            raise LambdaserveError(
                f"functions {served[model]} and {function} both serve model {model}: keep one "
                "live alias per model"
            )
        served[model] = function
    return served


class ModelRouter:
    """ASGI: ``/models/{name}/rest`` to model ``name``'s app at ``/rest``."""

    def __init__(self, apps: Mapping[str, ASGIApp]) -> None:
        self.apps = dict(apps)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith(MODELS_PREFIX):
            name, _, rest = path[len(MODELS_PREFIX) :].partition("/")
            app = self.apps.get(name)
            if app is None:
                known = ", ".join(sorted(self.apps)) or "none"
                await answer_json(send, 404, f"no model {name!r} is served here (served: {known})")
                return
            inner = {**scope, "path": "/" + rest, "raw_path": ("/" + rest).encode()}
            inner["root_path"] = scope.get("root_path", "") + MODELS_PREFIX + name
            await app(inner, receive, send)
            return
        if len(self.apps) == 1:
            (app,) = self.apps.values()
            await app(scope, receive, send)
            return
        await answer_json(
            send,
            404,
            f"this API serves {len(self.apps)} models: use /models/{{name}}{path} with name one of "
            + ", ".join(sorted(self.apps)),
        )
