"""The one loader of ``tests/events/``: API Gateway events shaped as AWS documents them.

Tests replace an event's placeholder body with their own payload (``make_event``).
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"

Event = dict[str, Any]


def load_event(name: str) -> Event:
    """``tests/events/<name>.json`` as it is on disk."""
    event: Event = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    return event


def with_body(event: Event, body: str | bytes, *, declare_length: bool = False) -> Event:
    """A copy of ``event`` carrying ``body`` (base64-encoded when the event says so).

    ``declare_length`` adds the client's ``Content-Length`` header, as API Gateway forwards it.
    """
    filled = copy.deepcopy(event)
    raw = body.encode() if isinstance(body, str) else body
    if filled.get("isBase64Encoded"):
        filled["body"] = base64.b64encode(raw).decode()
    else:
        filled["body"] = raw.decode()
    if declare_length:
        if "multiValueHeaders" in filled:  # REST API (v1) payload: both header maps
            filled["headers"]["Content-Length"] = str(len(raw))
            filled["multiValueHeaders"]["Content-Length"] = [str(len(raw))]
        else:
            filled["headers"]["content-length"] = str(len(raw))
    return filled


def make_event(
    name: str,
    payload: object = None,
    *,
    raw: str | bytes | None = None,
    declare_length: bool = False,
) -> Event:
    """The event ``name``; ``payload`` is JSON-encoded into its body, ``raw`` used verbatim."""
    event = load_event(name)
    if raw is None and payload is None:
        return event
    body = raw if raw is not None else json.dumps(payload)
    return with_body(event, body, declare_length=declare_length)


MakeEvent = Callable[..., Event]
