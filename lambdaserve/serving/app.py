"""``create_app``: the one FastAPI app, served by uvicorn locally and by Mangum on Lambda.

Request bodies are validated by validators generated from the manifest's schema (see
request_models); their schemas are published in the OpenAPI document so /docs shows them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

import lambdaserve
from lambdaserve.kernel.capture import (
    CapturePolicy,
    CapturePolicySource,
    CaptureSink,
)
from lambdaserve.kernel.errors import (
    CapturePolicyError,
    ModelNotLoadedError,
)
from lambdaserve.serving.body_limit import BodyLimitMiddleware
from lambdaserve.serving.error_handlers import install_error_handlers
from lambdaserve.serving.feedback_tokens import FeedbackSigner
from lambdaserve.serving.model_loader import LoadedModel
from lambdaserve.serving.prediction_service import PredictionObserver, PredictionService
from lambdaserve.serving.request_bodies import forged_tokens, read_json_body
from lambdaserve.serving.request_models import RequestValidators, build_request_validators
from lambdaserve.serving.responses import (
    PREDICTION_RESPONSES,
    ErrorBody,
    FeedbackAccepted,
    Health,
    ModelDescription,
    ModelRef,
)
from lambdaserve.serving.settings import ServingSettings

log = logging.getLogger(__name__)
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
        task=manifest.task,
        target=manifest.target,
        classes=manifest.classes,
        positive_class=manifest.positive_class,
        decision_threshold=manifest.decision_threshold,
        target_range=manifest.target_range,
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
    service, unavailable = None, load_error or "no verified model is loaded"
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
            unavailable = str(exc)
    _add_info_routes(app, service, unavailable)
    if service is None:
        _add_unavailable_routes(app, unavailable)
    else:
        _add_model_routes(app, service, settings)
    return app


def _add_info_routes(app: FastAPI, service: PredictionService | None, unavailable: str) -> None:
    """``/health`` and ``/model``; both 503 without a servable model."""

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health() -> Any:
        problem = unavailable if service is None else service.serving_problem()
        if service is None or problem is not None:
            return JSONResponse(
                status_code=503,
                content=Health(status="unavailable", detail=problem).model_dump(),
            )
        return Health(
            status="ok",
            model=ModelRef(name=service.model.name, version=service.model.version),
            runtime=service.model.predictor.runtime,
        )

    @app.get("/model", response_model=ModelDescription, responses=ERROR_RESPONSES)
    async def model_info() -> ModelDescription:
        if service is None:
            raise ModelNotLoadedError(unavailable)
        return describe(service.model)


def _add_unavailable_routes(app: FastAPI, unavailable: str) -> None:
    """The model's routes, each a 503 saying why nothing is served."""

    async def refuse(_: Request) -> None:
        raise ModelNotLoadedError(unavailable)

    for path in ("/predict", "/predict/batch", "/feedback"):
        app.post(path, responses=ERROR_RESPONSES)(refuse)


def _add_model_routes(app: FastAPI, service: PredictionService, settings: ServingSettings) -> None:
    model = service.model
    manifest = model.bundle.manifest
    validators = build_request_validators(
        manifest.features,
        classes=manifest.classes if manifest.is_classifier else None,
        max_batch_rows=settings.max_batch_rows,
    )
    headers = {"x-model-name": model.name, "x-model-version": model.version}

    def answer(payload: Any, status_code: int = 200) -> Response:
        return Response(
            # allow_nan=False: a NaN or infinity is not JSON, and is refused before this point.
            json.dumps(payload, separators=(",", ":"), allow_nan=False),
            status_code=status_code,
            headers=headers,
            media_type="application/json",
        )

    _add_prediction_routes(app, service, settings, validators, answer)
    _add_feedback_route(app, service, validators, answer)
    _publish_request_schemas(app, validators.openapi_components())


def _add_prediction_routes(
    app: FastAPI,
    service: PredictionService,
    settings: ServingSettings,
    validators: RequestValidators,
    answer: Callable[..., Response],
) -> None:
    single, batch = PREDICTION_RESPONSES[service.model.bundle.manifest.task]

    @app.post(
        "/predict",
        response_model=single,
        responses=ERROR_RESPONSES,
        summary="Score one row",
        openapi_extra=_body("PredictRequest"),
    )
    async def predict(request: Request) -> Response:
        received_at = time.perf_counter()
        body = await read_json_body(request, validators.predict)
        return answer(service.predict([body["features"]], received_at=received_at)[0])

    @app.post(
        "/predict/batch",
        response_model=batch,
        responses=ERROR_RESPONSES,
        summary=f"Score up to {settings.max_batch_rows} rows in one vectorized call",
        openapi_extra=_body("BatchPredictRequest"),
    )
    async def predict_batch(request: Request) -> Response:
        received_at = time.perf_counter()
        body = await read_json_body(request, validators.batch)
        return answer({"predictions": service.predict(body["instances"], received_at=received_at)})


def _add_feedback_route(
    app: FastAPI,
    service: PredictionService,
    validators: RequestValidators,
    answer: Callable[..., Response],
) -> None:
    @app.post(
        "/feedback",
        status_code=202,
        response_model=FeedbackAccepted,
        responses=ERROR_RESPONSES,
        summary="Report the observed outcome (class or value) of earlier predictions",
        openapi_extra=_body("FeedbackRequest"),
    )
    async def feedback(request: Request) -> Response:
        body = await read_json_body(request, validators.feedback)
        forged = service.forged_feedback(body["feedback"])
        if forged:  # nothing is stored: a request with one bad token is refused whole
            raise forged_tokens(forged)
        accepted = service.record_feedback(body["feedback"])
        return answer(
            FeedbackAccepted(accepted=accepted, model=service.model.name).model_dump(), 202
        )


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
