"""The one place errors become HTTP responses. Never a stack trace, never the submitted values."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from lambdaserve.kernel.errors import (
    BundleError,
    CapturePolicyError,
    FeedbackUnavailableError,
    InvalidInputError,
    LambdaserveError,
    ModelNotLoadedError,
)

log = logging.getLogger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[LambdaserveError], int], ...] = (
    (ModelNotLoadedError, 503),
    (FeedbackUnavailableError, 503),
    (BundleError, 503),
    (CapturePolicyError, 503),
    (InvalidInputError, 422),
)


NULL_NOT_ALLOWED = "null is not allowed: the training data had no missing values in this column"
_TYPE_ERRORS = frozenset({"float_type", "string_type", "bool_type"})


def _field_error(err: dict[str, Any]) -> dict[str, object]:
    """Location, message and type of one problem; pydantic's ``input`` is never echoed."""
    loc = [str(part) for part in err.get("loc", ())]
    if err.get("input", ...) is None and err.get("type") in _TYPE_ERRORS:
        return {"loc": loc, "msg": NULL_NOT_ALLOWED, "type": "null_not_allowed"}
    return {"loc": loc, "msg": err.get("msg", "invalid"), "type": err.get("type", "value_error")}


def _field_errors(exc: RequestValidationError) -> list[dict[str, object]]:
    return [_field_error(err) for err in exc.errors()]


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": _field_errors(exc)})


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        status_code=exc.status_code,
        content={"detail": exc.detail},
        headers=getattr(exc, "headers", None),
    )


async def _domain(_: Request, exc: Exception) -> JSONResponse:
    status = next((code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind)), 500)
    if status >= 500:
        log.error("request failed: %s", exc)
    return JSONResponse(status_code=status, content={"detail": str(exc)})


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error while serving a request")
    return JSONResponse(status_code=500, content={"detail": "internal error; see the service logs"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(LambdaserveError, _domain)
    app.add_exception_handler(Exception, _unexpected)
