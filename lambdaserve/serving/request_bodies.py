"""Reading a request's body: JSON only, within a deadline, validated in one pass; every refusal
a 4xx that says what to send (415, 408, 422 with per-field locations, values never echoed)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

#: How long a request body may take to arrive (uvicorn bounds headers and idle keep-alive only).
BODY_READ_TIMEOUT_SECONDS = 10.0


def forged_tokens(indexes: list[int]) -> RequestValidationError:
    """The 422 of a feedback request holding tokens this model never answered with."""
    return RequestValidationError(
        [
            {
                "type": "feedback_token",
                "loc": ("body", "feedback", index, "feedback_token"),
                "msg": "not the token this model answered with that prediction_id: "
                "send the feedback_token of the prediction's own response",
            }
            for index in indexes
        ]
    )


async def read_json_body(request: Request, validator: TypeAdapter[Any]) -> Any:
    """The validated JSON body, or a 415/408/422 that says what to send."""
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
