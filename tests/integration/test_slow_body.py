"""A client that sends half a body and stops does not hold a connection of the local server
open: after BODY_READ_TIMEOUT_SECONDS it gets a 408 (it waited forever before). Real uvicorn
on loopback, a raw socket as the client."""

from __future__ import annotations

import socket
import time

import pytest

import lambdaserve.serving.request_bodies as request_bodies
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.serving.app import create_app
from lambdaserve.serving.background_server import serve_in_thread
from lambdaserve.serving.model_loader import LoadedModel

pytestmark = pytest.mark.integration


def _read_response(client: socket.socket) -> str:
    """Headers and the whole body: they may arrive in separate segments."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
        chunk = client.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode()


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_body_that_stops_arriving_is_408(
    churn_bundle: VerifiedBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(request_bodies, "BODY_READ_TIMEOUT_SECONDS", 0.5)
    app = create_app(LoadedModel.from_bundle(churn_bundle), capture=None)
    with serve_in_thread(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as client:
            client.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"features": {'
            )
            started = time.monotonic()
            answer = _read_response(client)
            waited = time.monotonic() - started
    assert answer.startswith("HTTP/1.1 408"), answer
    assert "did not arrive within 0.5 s" in answer
    assert waited < 5
