"""schemathesis against each task's OpenAPI document: generated requests (valid and not) to every
route of a binary, a multiclass and a regression model's app; every answer must match the
document (status codes, content types, response schemas) and never be a 5XX."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.local.capture_log import CaptureLog
from lambdaserve.serving.app import create_app
from lambdaserve.serving.model_loader import LoadedModel
from tests.support.bundles import train_bundle

pytestmark = pytest.mark.integration
EXAMPLES = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _schema(root: Path, frame: pd.DataFrame, name: str) -> schemathesis.BaseSchema:
    bundle: VerifiedBundle = train_bundle(
        root / "job", frame, target="target", model_name=name, model_version="1", n_estimators=10
    )
    app = create_app(LoadedModel.from_bundle(bundle), capture=CaptureLog(root / "store"))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def binary_api(tmp_path_factory: pytest.TempPathFactory) -> schemathesis.BaseSchema:
    return _schema(
        tmp_path_factory.mktemp("binary"), load_breast_cancer(as_frame=True).frame, "cancer"
    )


@pytest.fixture(scope="module")
def multiclass_api(tmp_path_factory: pytest.TempPathFactory) -> schemathesis.BaseSchema:
    return _schema(tmp_path_factory.mktemp("multiclass"), load_iris(as_frame=True).frame, "iris")


@pytest.fixture(scope="module")
def regression_api(tmp_path_factory: pytest.TempPathFactory) -> schemathesis.BaseSchema:
    return _schema(
        tmp_path_factory.mktemp("regression"), load_diabetes(as_frame=True).frame, "diabetes"
    )


def _check(operation: schemathesis.APIOperation, calls: Counter[str]) -> None:
    # A feedback token the schema allows can still be one this model never answered with:
    # refusing it (422) is the contract, so the schema-valid-means-accepted check is off.
    excluded = [positive_data_acceptance] if operation.path == "/feedback" else []

    @given(case=operation.as_strategy())
    @EXAMPLES
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(excluded_checks=excluded)
        calls[f"{operation.method.upper()} {operation.path} {response.status_code}"] += 1

    check()


def _keeps_its_contract(schema: schemathesis.BaseSchema) -> Counter[str]:
    """Every operation, with generated cases: each answer validated against the document;
    the answers counted by route and status."""
    calls: Counter[str] = Counter()
    for result in schema.get_all_operations():
        _check(result.ok(), calls)
    return calls


def _routes(calls: Counter[str]) -> list[str]:
    return sorted({key.rsplit(" ", 1)[0] for key in calls})


ROUTES = ["GET /health", "GET /model", "POST /feedback", "POST /predict", "POST /predict/batch"]


def test_the_binary_api_keeps_its_contract(binary_api: schemathesis.BaseSchema) -> None:
    calls = _keeps_its_contract(binary_api)
    assert _routes(calls) == ROUTES and calls["POST /predict 200"] > 0
    assert sum(calls.values()) >= 5 * len(ROUTES)


def test_the_multiclass_api_keeps_its_contract(multiclass_api: schemathesis.BaseSchema) -> None:
    calls = _keeps_its_contract(multiclass_api)
    assert _routes(calls) == ROUTES and calls["POST /predict 200"] > 0
    assert sum(calls.values()) >= 5 * len(ROUTES)


def test_the_regression_api_keeps_its_contract(regression_api: schemathesis.BaseSchema) -> None:
    calls = _keeps_its_contract(regression_api)
    assert _routes(calls) == ROUTES and calls["POST /predict 200"] > 0
    assert sum(calls.values()) >= 5 * len(ROUTES)
