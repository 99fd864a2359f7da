"""``create_app``: the one FastAPI app, served by uvicorn locally and by Mangum on Lambda.

No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations, and the
request models are built at runtime from the manifest's schema.
"""

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

import lambdaserve
from lambdaserve.core.errors import ModelNotLoadedError
from lambdaserve.serving.body_limit import BodyLimitMiddleware
from lambdaserve.serving.error_handlers import install_error_handlers
from lambdaserve.serving.model_loader import LoadedModel
from lambdaserve.serving.prediction_service import PredictionObserver, PredictionService
from lambdaserve.serving.request_models import build_request_models
from lambdaserve.serving.responses import (
    BatchPredictions,
    ErrorBody,
    Health,
    ModelDescription,
    ModelRef,
    Prediction,
)
from lambdaserve.serving.settings import ServingSettings

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorBody, "description": "body over the size cap"},
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
) -> FastAPI:
    """Build the prediction API around a loaded model (or ``None``: every prediction is a 503)."""
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

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health() -> Any:
        if model is None:
            return JSONResponse(
                status_code=503,
                content=Health(status="unavailable", detail=unavailable).model_dump(),
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

    if model is None:

        @app.post("/predict", responses=ERROR_RESPONSES)
        async def predict_unavailable(_: Request) -> None:
            raise ModelNotLoadedError(unavailable)

        @app.post("/predict/batch", responses=ERROR_RESPONSES)
        async def batch_unavailable(_: Request) -> None:
            raise ModelNotLoadedError(unavailable)

        return app

    service = PredictionService(model, observer)
    models = build_request_models(
        model.bundle.manifest.features, max_batch_rows=settings.max_batch_rows
    )
    version_header = {"x-model-name": model.name, "x-model-version": model.version}

    async def predict(body: Any, response: Response) -> Prediction:
        response.headers.update(version_header)
        (prediction,) = service.predict([body.features.model_dump(by_alias=True)])
        return prediction

    async def predict_batch(body: Any, response: Response) -> BatchPredictions:
        response.headers.update(version_header)
        rows = [row.model_dump(by_alias=True) for row in body.instances]
        return BatchPredictions.model_construct(predictions=service.predict(rows))

    predict.__annotations__["body"] = models.predict
    predict_batch.__annotations__["body"] = models.batch
    app.post(
        "/predict", response_model=Prediction, responses=ERROR_RESPONSES, summary="Score one row"
    )(predict)
    app.post(
        "/predict/batch",
        response_model=BatchPredictions,
        responses=ERROR_RESPONSES,
        summary=f"Score up to {settings.max_batch_rows} rows in one vectorized call",
    )(predict_batch)
    return app
