"""The local stand-in for API Gateway → Lambda alias: one ASGI app in front of every version.

For each HTTP request the gateway reads the ``live`` alias from the local function file (again
only when the file changed, so ``update_alias`` takes effect without a restart), picks a function
version with ``choose_version`` (sticky when the request carries ``X-Unit-Id``) and forwards the
call to that version's own ``create_app`` instance. Each version's app is built once, from the
bundle its version pins (``MODEL_URI``/``MODEL_SHA256``), the first time it is routed to, like a
Lambda cold start; a bundle that does not load becomes that version's 503 app. Responses gain an
``x-function-version`` header and every request is appended to the request log. Every scored
row is captured (``CaptureLog`` under the store, unless capture is disabled in the settings)
stamped with the function version that served it, as on Lambda.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lambdaserve.kernel.capture import CaptureSink
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.kernel.function_versions import LIVE_ALIAS, AliasRouting
from lambdaserve.local.capture_log import CaptureLog
from lambdaserve.local.feedback_key import local_feedback_signer
from lambdaserve.local.function_versions import LocalFunctionVersions
from lambdaserve.local.request_log import RequestLog, RequestRecord
from lambdaserve.rollout.guard import OutputKind
from lambdaserve.rollout.traffic_assignment import choose_version
from lambdaserve.serving.app import create_app
from lambdaserve.serving.model_loader import load_model
from lambdaserve.serving.settings import ServingSettings

log = logging.getLogger(__name__)

UNIT_HEADER = b"x-unit-id"
FUNCTION_VERSION_HEADER = b"x-function-version"
SCORED_PATHS = frozenset({"/predict", "/predict/batch"})


@dataclass(frozen=True)
class VersionApp:
    """One function version's app and the model version it serves ("" when none loaded)."""

    app: ASGIApp
    model_version: str = ""


class LocalGateway:
    def __init__(
        self,
        root: Path,
        function_name: str = "predict",
        *,
        settings: ServingSettings,
        rng: random.Random | None = None,
        alias: str = LIVE_ALIAS,
        capture: CaptureSink | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.functions = LocalFunctionVersions(self.root, function_name)
        self.alias_name = alias
        self.settings = settings
        self.rng = rng
        self.request_log = RequestLog(self.root, function_name)
        if capture is None and settings.capture_enabled:
            capture = CaptureLog(self.root)
        self.capture = capture
        self.feedback_signer = local_feedback_signer(self.root)
        self._routing_key: tuple[int, ...] | None = None
        self._routing: AliasRouting | str = ""
        self._apps: dict[str, VersionApp] = {}
        self._build_lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets behind API Gateway's REST API either
        received_at = datetime.now(UTC)
        routing = self.routing()
        if isinstance(routing, str):
            self._record(received_at, scope, "", "", 503, 0.0, Outputs())
            await _unavailable(send, routing)
            return
        version = choose_version(routing, unit_id=_unit_id(scope), rng=self.rng)
        target = self._apps.get(version)
        if target is None:
            target = await anyio.to_thread.run_sync(self._app_for, version)
        await self._forward(target, version, received_at, scope, receive, send)

    def routing(self) -> AliasRouting | str:
        """The alias routing, or why there is none; the file is read again only when it changed."""
        try:
            stat = os.stat(self.functions.path)
            key: tuple[int, ...] = (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)
        except FileNotFoundError:
            key = ()
        if key != self._routing_key:
            self._routing = self._read_routing()
            self._routing_key = key
        return self._routing

    def _read_routing(self) -> AliasRouting | str:
        try:
            routing = self.functions.alias(self.alias_name)
        except LambdaserveError as exc:
            return str(exc)
        if routing is None:
            return (
                f"function {self.functions.function_name} has no {self.alias_name!r} alias: "
                "publishing the champion creates it (lambdaserve publish NAME:VERSION)"
            )
        return routing

    def _app_for(self, version: str) -> VersionApp:
        """The app of one function version, built once (in a worker thread: loading is slow)."""
        with self._build_lock:
            if version not in self._apps:
                self._apps[version] = self._build(version)
            return self._apps[version]

    def _build(self, version: str) -> VersionApp:
        published = {v.function_version: v for v in self.functions.versions()}.get(version)
        if published is None:
            reason = f"version {version} of {self.functions.function_name} is not published"
            return VersionApp(create_app(None, settings=self.settings, load_error=reason))
        try:
            model = load_model(
                published.bundle_uri,
                cache_dir=self.root / ".cache" / "bundles",
                expected_sha256=published.bundle_sha256 or None,
                prefer=self.settings.preferred_runtime,
                trust=self.settings.model_trust(),
            )
        except Exception as exc:  # any failure becomes this version's 503, never a trace
            log.warning("function version %s cannot load its bundle: %s", version, exc)
            reason = f"function version {version} could not load its bundle; see the log"
            return VersionApp(create_app(None, settings=self.settings, load_error=reason))
        app = create_app(
            model,
            settings=self.settings,
            capture=self.capture,
            function_version=version,
            feedback_signer=self.feedback_signer,
        )
        return VersionApp(app, model.version)

    async def _forward(
        self,
        target: VersionApp,
        version: str,
        received_at: datetime,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        path = scope.get("path", "")
        keep_body = scope.get("method") == "POST" and path in SCORED_PATHS
        status, body, tag = 500, bytearray(), version.encode()
        started, logged = time.perf_counter(), False

        def log_once() -> None:
            nonlocal logged
            if not logged:
                logged = True
                latency_ms = (time.perf_counter() - started) * 1000
                outputs = _outputs(bytes(body)) if body else Outputs()
                self._record(
                    received_at, scope, version, target.model_version, status, latency_ms, outputs
                )

        async def tagged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                message = {**message, "headers": [*headers, (FUNCTION_VERSION_HEADER, tag)]}
            elif message["type"] == "http.response.body":
                if keep_body and status == 200:
                    body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    log_once()  # on disk before the client has the whole answer
            await send(message)

        try:
            await target.app(scope, receive, tagged_send)
        finally:
            log_once()

    def _record(
        self,
        received_at: datetime,
        scope: Scope,
        version: str,
        model_version: str,
        status: int,
        latency_ms: float,
        outputs: Outputs,
    ) -> None:
        self.request_log.append(
            RequestRecord(
                ts=received_at,
                function_version=version,
                model_version=model_version,
                path=scope.get("path", ""),
                status=status,
                latency_ms=round(latency_ms, 3),
                rows=len(outputs.scores) + len(outputs.labels),
                scores=outputs.scores,
                output=outputs.kind,
                labels=outputs.labels,
            )
        )


def create_gateway(
    root: Path,
    function_name: str = "predict",
    *,
    settings: ServingSettings,
    rng: random.Random | None = None,
    capture: CaptureSink | None = None,
) -> LocalGateway:
    """The local API Gateway → ``live`` alias → function version app (an ASGI app).

    Captures go to ``capture``, by default to ``CaptureLog(root)`` (``<root>/captures``).
    """
    return LocalGateway(root, function_name, settings=settings, rng=rng, capture=capture)


def _unit_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == UNIT_HEADER:
            return bytes(value).decode("latin-1")
    return None


@dataclass(frozen=True)
class Outputs:
    """What a /predict or /predict/batch answer served, as the guard follows it: binary
    probabilities or regression predictions (``scores``), or multiclass labels."""

    kind: OutputKind = "probability"
    scores: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


def _outputs(body: bytes) -> Outputs:
    try:
        payload = json.loads(body)
    except ValueError:
        return Outputs()
    predictions = payload.get("predictions", [payload]) if isinstance(payload, dict) else []
    answers = [p for p in predictions if isinstance(p, dict)]
    if any("probabilities" in p for p in answers):
        return Outputs("class", labels=[json.dumps(p["label"]) for p in answers if "label" in p])
    if any("prediction" in p for p in answers):
        return Outputs("prediction", scores=[float(p["prediction"]) for p in answers])
    return Outputs(scores=[float(p["probability"]) for p in answers if "probability" in p])


async def answer_json(send: Send, status: int, detail: str) -> None:
    """A JSON ``{"detail": ...}`` answer, as API Gateway and our app give errors."""
    payload = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _unavailable(send: Send, message: str) -> None:
    await answer_json(send, 503, message)


async def lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start: versions load on first use, like Lambda cold starts."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
