"""Fixtures of the integration tier: moto's server, the Lambda handler builder, request rows.

The API Gateway events (``make_event``) and the fake Lambda context (``lambda_context``) are the
fixtures of ``tests/conftest.py``, over ``tests/support``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lambdaserve.datasets import churn
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.schema import FeatureSpec
from lambdaserve.serving.settings import ServingSettings
from lambdaserve.wiring.aws_predict import LambdaHandler, build_lambda_handler
from tests.integration.moto_server import running_moto_server

Row = dict[str, Any]
BuildHandler = Callable[[ServingSettings], LambdaHandler]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's server on 127.0.0.1, one per test module."""
    with running_moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def build_handler() -> BuildHandler:
    """``build_lambda_handler``; each handler keeps its own metric state."""
    return build_lambda_handler


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
