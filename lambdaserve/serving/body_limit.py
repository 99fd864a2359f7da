"""Refuse bodies over a byte cap with 413 before anything parses them (pure ASGI middleware).

A declared ``Content-Length`` over the cap is refused without reading the body; a body without one
(chunked, or an API Gateway event without the header) is counted as it streams in and refused as
soon as it passes the cap, before FastAPI decodes any JSON.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    @property
    def message(self) -> str:
        return (
            f"request body exceeds the limit of {self.max_body_bytes} bytes; "
            "send fewer rows per request"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                await self._reject(send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI passes HTTPException through its body parsing unchanged.
                    raise HTTPException(status_code=413, detail=self.message)
            return message

        await self.app(scope, limited_receive, send)

    async def _reject(self, send: Send) -> None:
        payload = json.dumps({"detail": self.message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
