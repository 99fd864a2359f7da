"""``create_app``: the one FastAPI app, served by uvicorn locally and by Mangum on Lambda.

Request bodies are validated by validators generated from the manifest's schema (see
request_models); their schemas are published in the OpenAPI document so /docs shows them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

import lambdaserve
from lambdaserve.core.capture import (
    CapturePolicy,
    CapturePolicySource,
    CaptureSink,
    FeedbackRecord,
)
from lambdaserve.core.errors import (
    CapturePolicyError,
    FeedbackUnavailableError,
    ModelNotLoadedError,
)
from lambdaserve.core.feedback_tokens import FeedbackSigner
from lambdaserve.serving.body_limit import BodyLimitMiddleware
from lambdaserve.serving.error_handlers import install_error_handlers
from lambdaserve.serving.model_loader import LoadedModel
from lambdaserve.serving.prediction_service import PredictionObserver, PredictionService
from lambdaserve.serving.request_models import build_request_validators
from lambdaserve.serving.responses import (
    BatchPredictions,
    ErrorBody,
    FeedbackAccepted,
    Health,
    ModelDescription,
    ModelRef,
    Prediction,
)
from lambdaserve.serving.settings import ServingSettings

log = logging.getLogger(__name__)
#: How long a request body may take to arrive (uvicorn bounds headers and idle keep-alive only).
BODY_READ_TIMEOUT_SECONDS = 10.0
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    408: {"model": ErrorBody, "description": "the body did not arrive in time"},
    413: {"model": ErrorBody, "description": "body over the size cap"},
    415: {"model": ErrorBody, "description": "a body that is not application/json"},
    422: {"model": ErrorBody, "description": "per-field validation errors (values never echoed)"},
    503: {"model": ErrorBody, "description": "no verified model is loaded"},
}


def describe(model: LoadedModel) -> ModelDescription:
    manifest = model.bundle.manifest
    return ModelDescription(
        name=manifest.name,
        version=manifest.version,
        digest=model.bundle.digest,
        runtime=model.predictor.runtime,
        created_at=manifest.created_at,
        target=manifest.target,
        classes=manifest.classes,
        positive_class=manifest.positive_class,
        decision_threshold=manifest.decision_threshold,
        features=list(manifest.features.features),
        metrics=manifest.metrics,
        onnx=manifest.onnx,
        load_seconds=model.load_seconds,
    )


def create_app(
    model: LoadedModel | None,
    *,
    settings: ServingSettings | None = None,
    observer: PredictionObserver | None = None,
    load_error: str | None = None,
    capture: CaptureSink | None = None,
    capture_policy: CapturePolicy | CapturePolicySource | None = None,
    function_version: str | None = None,
    feedback_signer: FeedbackSigner | None = None,
) -> FastAPI:
    """Build the prediction API around a loaded model (or ``None``: every prediction is a 503).

    With ``capture``, every scored row is also written to that sink as a ``CaptureRecord``
    stamped with ``function_version``, under ``capture_policy`` (default: the settings' one; a
    ``CapturePolicySource`` is asked before every capture, so a changed policy applies).
    Every prediction answers a ``feedback_token`` from ``feedback_signer``, which every version
    taking this model's feedback must share (without one, a key of this app alone).
    """
    settings = settings or ServingSettings()
    app = FastAPI(
        title="lambdaserve prediction API",
        version=lambdaserve.__version__,
        description=(
            f"Serving {model.name} version {model.version}" if model else "No model loaded"
        ),
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    unavailable = load_error or "no verified model is loaded"
    service: PredictionService | None = None
    if model is not None:
        try:
            service = PredictionService(
                model,
                observer,
                capture=capture,
                capture_policy=capture_policy or settings.capture_policy(),
                function_version=function_version,
                feedback_signer=feedback_signer,
            )
        except CapturePolicyError as exc:
            # Fail closed: serving without the mask would capture the values it should hide.
            log.error("model %s:%s not served: %s", model.name, model.version, exc)
            model, unavailable = None, str(exc)

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health() -> Any:
        problem = unavailable if model is None else None
        if service is not None and service.capture is not None:
            try:  # a stage policy changed to name a field this model lacks stops serving
                service.policy_in_force()
            except CapturePolicyError as exc:
                problem = str(exc)
        if model is None or problem is not None:
            return JSONResponse(
                status_code=503,
                content=Health(status="unavailable", detail=problem).model_dump(),
            )
        return Health(
            status="ok",
            model=ModelRef(name=model.name, version=model.version),
            runtime=model.predictor.runtime,
        )

    @app.get("/model", response_model=ModelDescription, responses=ERROR_RESPONSES)
    async def model_info() -> ModelDescription:
        if model is None:
            raise ModelNotLoadedError(unavailable)
        return describe(model)

    if model is None or service is None:

        @app.post("/predict", responses=ERROR_RESPONSES)
        async def predict_unavailable(_: Request) -> None:
            raise ModelNotLoadedError(unavailable)

        @app.post("/predict/batch", responses=ERROR_RESPONSES)
        async def batch_unavailable(_: Request) -> None:
            raise ModelNotLoadedError(unavailable)

        @app.post("/feedback", responses=ERROR_RESPONSES)
        async def feedback_unavailable(_: Request) -> None:
            raise ModelNotLoadedError(unavailable)

        return app

    manifest = model.bundle.manifest
    signer = service.feedback_signer
    validators = build_request_validators(
        manifest.features, classes=manifest.classes, max_batch_rows=settings.max_batch_rows
    )
    headers = {"x-model-name": model.name, "x-model-version": model.version}

    async def parse(request: Request, validator: TypeAdapter[Any]) -> Any:
        # JSON only: a browser sends text/plain and form bodies to 127.0.0.1 from any web page
        # without a CORS preflight; application/json it must ask for first.
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise HTTPException(
                status_code=415,
                detail=f"send the body as JSON with Content-Type: application/json (got "
                f"{media or 'no content type'!r})",
            )
        try:  # a client that stops sending half-way does not hold the connection open
            raw = await asyncio.wait_for(request.body(), timeout=BODY_READ_TIMEOUT_SECONDS)
        except TimeoutError as exc:
            raise HTTPException(
                status_code=408,
                detail=f"the request body did not arrive within {BODY_READ_TIMEOUT_SECONDS} s",
            ) from exc
        # pydantic-core parses and validates the raw bytes in one pass (see request_models).
        try:
            return validator.validate_json(raw)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
            ) from exc

    def answer(payload: Any) -> Response:
        return Response(
            # allow_nan=False: a NaN or infinity is not JSON, and is refused before this point.
            json.dumps(payload, separators=(",", ":"), allow_nan=False),
            headers=headers,
            media_type="application/json",
        )

    @app.post(
        "/predict",
        response_model=Prediction,
        responses=ERROR_RESPONSES,
        summary="Score one row",
        openapi_extra=_body("PredictRequest"),
    )
    async def predict(request: Request) -> Response:
        received_at = time.perf_counter()
        body = await parse(request, validators.predict)
        return answer(service.predict([body["features"]], received_at=received_at)[0])

    @app.post(
        "/predict/batch",
        response_model=BatchPredictions,
        responses=ERROR_RESPONSES,
        summary=f"Score up to {settings.max_batch_rows} rows in one vectorized call",
        openapi_extra=_body("BatchPredictRequest"),
    )
    async def predict_batch(request: Request) -> Response:
        received_at = time.perf_counter()
        body = await parse(request, validators.batch)
        return answer({"predictions": service.predict(body["instances"], received_at=received_at)})

    @app.post(
        "/feedback",
        status_code=202,
        response_model=FeedbackAccepted,
        responses=ERROR_RESPONSES,
        summary="Report the observed class of earlier predictions (ground truth)",
        openapi_extra=_body("FeedbackRequest"),
    )
    async def feedback(request: Request) -> Response:
        body = await parse(request, validators.feedback)
        if service.capture is None:
            raise FeedbackUnavailableError(
                "feedback is stored with the prediction captures, and capture is off here "
                "(CAPTURE_ENABLED=false)"
            )
        forged = [
            {
                "type": "feedback_token",
                "loc": ("body", "feedback", index, "feedback_token"),
                "msg": "not the token this model answered with that prediction_id: send the "
                "feedback_token of the prediction's own response",
            }
            for index, item in enumerate(body["feedback"])
            if not signer.verify(model.name, item["prediction_id"], item["feedback_token"])
        ]
        if forged:  # nothing is stored: a request with one bad token is refused whole
            raise RequestValidationError(forged)
        now = datetime.now(UTC)
        records = [
            FeedbackRecord(
                received_at=now,
                prediction_id=item["prediction_id"],
                model_name=model.name,
                label=item["label"],
            )
            for item in body["feedback"]
        ]
        try:
            service.capture.write_feedback(records)
        except Exception as exc:
            log.exception("feedback could not be stored")
            raise FeedbackUnavailableError(
                "feedback could not be stored; nothing was kept, send it again"
            ) from exc
        return Response(
            FeedbackAccepted(accepted=len(records), model=model.name).model_dump_json(),
            status_code=202,
            headers=headers,
            media_type="application/json",
        )

    _publish_request_schemas(app, validators.openapi_components())
    return app


def _body(component: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}
            },
        }
    }


def _publish_request_schemas(app: FastAPI, components: dict[str, Any]) -> None:
    """Add the generated request schemas to the OpenAPI document FastAPI builds."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document.setdefault("components", {}).setdefault("schemas", {}).update(components)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
