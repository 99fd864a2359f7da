"""Fixtures of the integration tier: API Gateway events, a fake Lambda context, request rows.

Events are the JSON files under ``tests/events/`` (shaped as AWS documents them); tests replace the
placeholder body with real rows drawn from fresh churn traffic.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lambdaserve.core.bundle import VerifiedBundle
from lambdaserve.core.schema import FeatureSpec
from lambdaserve.datasets import churn
from lambdaserve.serving.lambda_entry import LambdaHandler, build_lambda_handler
from lambdaserve.serving.settings import ServingSettings
from tests.integration.moto_server import running_moto_server

EVENTS_DIR = Path(__file__).parents[1] / "events"

Event = dict[str, Any]
Row = dict[str, Any]
MakeEvent = Callable[..., Event]
BuildHandler = Callable[[ServingSettings], LambdaHandler]


@dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes of ``LambdaContext`` that Powertools and Mangum read."""

    function_name: str = "lambdaserve-predict"
    function_version: str = "7"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:lambdaserve-predict:live"
    )
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/lambdaserve-predict"
    log_stream_name: str = "2026/11/26/[7]0123456789abcdef0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def load_event(name: str) -> Event:
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


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's server on 127.0.0.1, one per test module."""
    with running_moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def build_handler() -> BuildHandler:
    """``build_lambda_handler``; each handler keeps its own metric state."""
    return build_lambda_handler


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def make_event() -> MakeEvent:
    """``make_event(name, payload=None, *, raw=None, declare_length=False)``.

    ``payload`` is JSON-encoded into the body; ``raw`` is used as the body verbatim.
    """

    def make(
        name: str,
        payload: object = None,
        *,
        raw: str | bytes | None = None,
        declare_length: bool = False,
    ) -> Event:
        event = load_event(name)
        if raw is None and payload is None:
            return event
        body = raw if raw is not None else json.dumps(payload)
        return with_body(event, body, declare_length=declare_length)

    return make


def _json_value(spec: FeatureSpec, value: object) -> object:
    """A value as a client would send it: JSON null for missing, no numbers in strings."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str) and not value.strip():
        return None  # the dirty export's blank total_charges
    if spec.kind == "categorical":
        return str(value)
    number = float(value)  # type: ignore[arg-type]
    return int(number) if spec.dtype == "int" else number


@pytest.fixture(scope="session")
def traffic_rows(churn_bundle: VerifiedBundle) -> list[Row]:
    """300 rows of new churn traffic (another seed than training), as JSON-ready dicts."""
    frame = churn.generate_churn(300, seed=11)
    specs = churn_bundle.manifest.features.features
    return [
        {spec.name: _json_value(spec, record[spec.name]) for spec in specs}
        for record in frame.to_dict(orient="records")
    ]
