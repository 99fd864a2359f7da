"""The Lambda side of serving: Mangum around ``create_app``, with Powertools logs and EMF metrics.

The bundle named by ``MODEL_URI`` is loaded when the handler is built, i.e. once per execution
environment during Lambda's init phase, never inside a request or the ASGI lifespan.

Every prediction is captured as one JSON line on stdout (``LogLineSink``), stamped with the
executed function version that Lambda sets in ``AWS_LAMBDA_FUNCTION_VERSION`` (the same value
as ``context.function_version``); the log subscription ships it to Firehose and S3.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from mangum import Mangum

from lambdaserve.aws.emf import emf_metrics
from lambdaserve.aws.prediction_metrics import EmfObserver
from lambdaserve.aws.s3_bundle_source import download_bundle
from lambdaserve.kernel.capture import CapturePolicy, CapturePolicySource
from lambdaserve.kernel.errors import (
    BundleIntegrityError,
    LambdaserveError,
    UnsafeArtifactError,
)
from lambdaserve.kernel.metric_names import (
    MODEL_NAME,
    MODEL_VERSION,
    PREDICT_SERVICE,
    PredictMetric,
)
from lambdaserve.serving.app import create_app
from lambdaserve.serving.capture_sinks import LogLineSink
from lambdaserve.serving.feedback_tokens import FeedbackSigner
from lambdaserve.serving.model_loader import LoadedModel, load_model
from lambdaserve.serving.settings import ServingSettings

PREDICTION_PATHS = ("/predict", "/predict/batch")
#: ``AWS_LAMBDA_INITIALIZATION_TYPE`` of an init SnapStart snapshots (else on-demand or
#: provisioned-concurrency).
SNAP_START = "snap-start"
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def _load(settings: ServingSettings, logger: Logger) -> tuple[LoadedModel | None, str | None]:
    if not settings.model_uri:
        return None, "MODEL_URI is not set; the function has no model to serve"
    try:
        model = load_model(
            settings.model_uri,
            cache_dir=settings.bundle_cache_dir,
            expected_sha256=settings.model_sha256,
            prefer=settings.preferred_runtime,
            download=download_bundle,
            trust=settings.model_trust(),
        )
    except LambdaserveError as exc:
        # The full reason (URIs, botocore text) goes to the logs only; callers get a short one.
        logger.exception(
            "model bundle refused", extra={"model_uri": settings.model_uri, "reason": str(exc)}
        )
        return None, _short_reason(exc)
    except Exception as exc:  # a failed download must be a 503 with a reason, not a dead init
        logger.exception(
            "model bundle could not be loaded",
            extra={"model_uri": settings.model_uri, "reason": str(exc)},
        )
        return None, _short_reason(exc)
    logger.info(
        "model loaded",
        extra={
            MODEL_NAME: model.name,
            MODEL_VERSION: model.version,
            "digest": model.bundle.digest,
            "runtime": model.predictor.runtime,
            "load_seconds": round(model.load_seconds, 4),
        },
    )
    return model, None


def _short_reason(exc: Exception) -> str:
    """What API clients are told about a failed load: no URI, digest or exception text (those
    are in the function's logs)."""
    if isinstance(exc, BundleIntegrityError):
        reason = "model bundle refused: it failed its sha256 verification"
    elif isinstance(exc, UnsafeArtifactError):
        reason = "model bundle refused: it holds a type or file this deployment never loads"
    else:
        reason = "model bundle could not be loaded"
    return f"{reason}; see the function logs"


def _capture_secrets(
    settings: ServingSettings, logger: Logger
) -> tuple[CapturePolicy | CapturePolicySource, FeedbackSigner | None, str | None]:
    """The capture policy (the stage's, from ``CAPTURE_POLICY_PARAMETER``, when one is named)
    and the feedback token signer, from the stage's capture secret (``CAPTURE_SALT_SECRET``,
    read once per execution environment): the salt of hashed fields and the key every
    version's feedback tokens share. Without the secret nothing is served: hashed fields must
    never be captured unsalted, nor feedback accepted unsigned."""
    if not (settings.capture_enabled and settings.capture_salt_secret):
        return settings.capture_policy(), None, None
    from lambdaserve.aws.secrets import read_secret_string

    try:
        salt = read_secret_string(settings.capture_salt_secret)
    except LambdaserveError as exc:
        logger.exception(
            "capture secret unavailable",
            extra={"secret": settings.capture_salt_secret, "reason": str(exc)},
        )
        return settings.capture_policy(), None, "capture secret unavailable; see the function logs"
    signer = FeedbackSigner.from_secret(salt)
    if settings.capture_policy_parameter:
        from lambdaserve.aws.capture_policy_parameter import ParameterCapturePolicy

        return ParameterCapturePolicy(settings.capture_policy_parameter, salt=salt), signer, None
    return settings.capture_policy(salt), signer, None


def _is_prediction(event: dict[str, Any]) -> bool:
    """POST /predict or /predict/batch, in a REST (``path``) or HTTP API (``rawPath``) event;
    the HTTP API's path may carry the stage name first."""
    path = str(event.get("rawPath") or event.get("path") or "").rstrip("/")
    return path.endswith(PREDICTION_PATHS)


def build_lambda_handler(settings: ServingSettings | None = None) -> LambdaHandler:
    settings = settings or ServingSettings()
    logger = Logger(service="lambdaserve-predict")
    capture_policy, signer, salt_error = _capture_secrets(settings, logger)
    if settings.capture_enabled and not settings.capture_salt_secret:
        logger.warning(
            "no CAPTURE_SALT_SECRET: feedback tokens verify only in this execution environment"
        )
    model, error = _load(settings, logger) if salt_error is None else (None, salt_error)
    dimensions = {MODEL_NAME: model.name, MODEL_VERSION: model.version} if model else {}
    metrics = emf_metrics(PREDICT_SERVICE, dimensions)
    app = create_app(
        model,
        settings=settings,
        observer=EmfObserver(metrics),
        load_error=error,
        capture=LogLineSink() if settings.capture_enabled else None,
        capture_policy=capture_policy,
        # A reserved variable of the Lambda runtime, not configuration: not in ServingSettings.
        function_version=os.environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
        feedback_signer=signer,
    )
    asgi = Mangum(app, lifespan="off", api_gateway_base_path=settings.api_base_path or "/")
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == SNAP_START:
        # A reserved variable of the Lambda runtime: this init is the one SnapStart snapshots.
        from lambdaserve.wiring import snapstart_hooks

        snapstart_hooks.register(model, getattr(capture_policy, "expire", None))

    @metrics.log_metrics
    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        started = time.perf_counter()
        response: dict[str, Any] = asgi(event, context)
        status = int(response.get("statusCode", 500))
        metrics.add_metric(
            name=PredictMetric.LATENCY,
            unit=MetricUnit.Milliseconds,
            value=(time.perf_counter() - started) * 1000,
        )
        metrics.add_metric(name=PredictMetric.REQUESTS, unit=MetricUnit.Count, value=1)
        if not _is_prediction(event):
            # The rollout guard's ServerErrors/ClientErrors alarms judge predictions only: a
            # client sending bad feedback to the challenger must not roll it back.
            if status >= 400:
                metrics.add_metric(
                    name=PredictMetric.OTHER_REQUEST_ERRORS, unit=MetricUnit.Count, value=1
                )
        else:
            # The denominator of the guard's 4XX share against the champion's.
            metrics.add_metric(
                name=PredictMetric.PREDICTION_REQUESTS, unit=MetricUnit.Count, value=1
            )
            if status >= 500:
                metrics.add_metric(name=PredictMetric.SERVER_ERRORS, unit=MetricUnit.Count, value=1)
            elif status >= 400:
                metrics.add_metric(name=PredictMetric.CLIENT_ERRORS, unit=MetricUnit.Count, value=1)
        return response

    return handler
