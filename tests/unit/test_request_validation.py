"""The request validation matrix: strict types, finite numbers, every column, no unknown fields,
nullable only where training saw missing values, unseen categories flagged, values never echoed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.serving.app import create_app
from lambdaserve.serving.model_loader import LoadedModel
from lambdaserve.serving.settings import ServingSettings

pytestmark = pytest.mark.unit
SECRET = "SECRET-VALUE-7731"


@pytest.fixture(scope="module")
def model(churn_bundle: VerifiedBundle) -> LoadedModel:
    return LoadedModel.from_bundle(churn_bundle)


@pytest.fixture(scope="module")
def client(model: LoadedModel) -> TestClient:
    settings = ServingSettings(max_body_bytes=64 * 1024, max_batch_rows=50)
    return TestClient(create_app(model, settings=settings))


@pytest.fixture(scope="module")
def row(model: LoadedModel) -> dict[str, Any]:
    features: dict[str, Any] = {}
    for spec in model.bundle.manifest.features.features:
        if spec.kind == "numeric":
            assert spec.minimum is not None and spec.maximum is not None
            features[spec.name] = (spec.minimum + spec.maximum) / 2
        else:
            features[spec.name] = spec.categories[0]
    return features


def _spec(model: LoadedModel, *, kind: str, nullable: bool) -> str:
    return next(
        s.name
        for s in model.bundle.manifest.features.features
        if s.kind == kind and s.nullable == nullable
    )


def test_valid_row_is_scored(client: TestClient, row: dict[str, Any], model: LoadedModel) -> None:
    response = client.post("/predict", json={"features": row})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "prediction_id",
        "model",
        "probability",
        "label",
        "unseen_categories",
        "feedback_token",
    }
    assert body["model"] == {"name": "churn", "version": "1"}
    assert 0.0 <= body["probability"] <= 1.0
    assert body["label"] in model.bundle.manifest.classes
    assert len(body["prediction_id"]) == 26
    assert response.headers["x-model-version"] == "1"


def test_integers_are_numbers_too(
    client: TestClient, row: dict[str, Any], model: LoadedModel
) -> None:
    name = _spec(model, kind="numeric", nullable=False)
    assert client.post("/predict", json={"features": {**row, name: 12}}).status_code == 200


@pytest.mark.parametrize(
    ("case", "expected_type"),
    [
        ("number_as_string", "float_type"),
        ("bool_as_number", "float_type"),
        ("category_as_number", "string_type"),
        ("null_in_non_nullable", "null_not_allowed"),
        ("missing_column", "missing"),
        ("unknown_column", "extra_forbidden"),
        ("list_as_number", "float_type"),
        ("too_long_category", "string_too_long"),
    ],
)
def test_invalid_rows_get_per_field_422_without_echo(
    client: TestClient, row: dict[str, Any], model: LoadedModel, case: str, expected_type: str
) -> None:
    numeric = _spec(model, kind="numeric", nullable=False)
    categorical = model.bundle.manifest.features.categorical[0].name
    features = dict(row)
    if case == "number_as_string":
        features[numeric] = SECRET
    elif case == "bool_as_number":
        features[numeric] = True
    elif case == "category_as_number":
        features[categorical] = 7731
    elif case == "null_in_non_nullable":
        features[numeric] = None
    elif case == "missing_column":
        del features[numeric]
    elif case == "unknown_column":
        features[SECRET] = SECRET
    elif case == "list_as_number":
        features[numeric] = [SECRET]
    elif case == "too_long_category":
        features[categorical] = SECRET * 100
    response = client.post("/predict", json={"features": features})
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert any(err["type"] == expected_type for err in errors), errors
    assert all(set(err) == {"loc", "msg", "type"} for err in errors)
    assert "7731" not in response.text.replace(SECRET, "") or case == "unknown_column"
    assert SECRET not in json.dumps([e["msg"] for e in errors])
    if case != "unknown_column":
        assert SECRET not in response.text


def test_unknown_field_name_is_the_only_thing_reported(
    client: TestClient, row: dict[str, Any]
) -> None:
    response = client.post("/predict", json={"features": {**row, "colour": SECRET}})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "features", "colour"]
    assert SECRET not in response.text


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused(
    client: TestClient, row: dict[str, Any], model: LoadedModel, literal: str
) -> None:
    numeric = _spec(model, kind="numeric", nullable=False)
    body = json.dumps({"features": {**row, numeric: 0.123456}}).replace("0.123456", literal)
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "finite_number"


@pytest.mark.parametrize("literal", ["1e308", "-1e308", "3.5e38"])
def test_numbers_beyond_float32_are_refused_per_field_without_echo(
    client: TestClient, row: dict[str, Any], model: LoadedModel, literal: str
) -> None:
    numeric = [s.name for s in model.bundle.manifest.features.numeric][:4]
    features = {**row, **dict.fromkeys(numeric, 0.123456)}
    body = json.dumps({"features": features}).replace("0.123456", literal)
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert sorted(e["loc"][-1] for e in errors) == sorted(numeric)
    assert {e["type"] for e in errors} <= {"less_than_equal", "greater_than_equal"}
    assert literal.lstrip("-") not in response.text


def test_the_largest_float32_is_still_accepted(
    client: TestClient, row: dict[str, Any], model: LoadedModel
) -> None:
    numeric = _spec(model, kind="numeric", nullable=False)
    response = client.post("/predict", json={"features": {**row, numeric: 3.4e38}})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:  # the model overflowed: said so, never a NaN answer
        assert "no finite score" in response.json()["detail"]


class _NanPredictor:
    runtime = "onnx"

    def predict_outputs(self, columns: Any) -> Any:
        import numpy as np

        n_rows = len(next(iter(columns.values())))
        probabilities = np.full((n_rows, 2), 0.5)
        probabilities[-1] = np.nan
        return probabilities


def test_a_non_finite_score_is_never_answered_nor_captured(
    model: LoadedModel, row: dict[str, Any]
) -> None:
    from dataclasses import replace

    from lambdaserve.serving.capture_sinks import MemorySink

    sink = MemorySink()
    broken = replace(model, predictor=_NanPredictor())
    client = TestClient(create_app(broken, capture=sink))
    for path, body in (
        ("/predict", {"features": row}),
        ("/predict/batch", {"instances": [row, row]}),
    ):
        response = client.post(path, json=body)
        assert response.status_code == 422, response.text
        assert "no finite score" in response.json()["detail"]
        assert "NaN" not in response.text
    assert sink.records == []


def test_null_allowed_where_training_had_missing_values(
    client: TestClient, row: dict[str, Any], model: LoadedModel
) -> None:
    nullable = [s.name for s in model.bundle.manifest.features.features if s.nullable]
    assert nullable, "the dirty churn data has missing values in some columns"
    features = {**row, **dict.fromkeys(nullable)}
    assert client.post("/predict", json={"features": features}).status_code == 200


def test_unseen_category_is_accepted_and_flagged(
    client: TestClient, row: dict[str, Any], model: LoadedModel
) -> None:
    categorical = model.bundle.manifest.features.categorical[0].name
    response = client.post("/predict", json={"features": {**row, categorical: "brand-new"}})
    assert response.status_code == 200
    assert response.json()["unseen_categories"] == [categorical]


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"not json", 422), (b"[]", 422), (b'{"features": []}', 422), (b"{}", 422)],
)
def test_malformed_bodies(client: TestClient, body: bytes, status: int) -> None:
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert "Traceback" not in response.text


def test_batch_is_one_call_with_ordered_unique_ids(client: TestClient, row: dict[str, Any]) -> None:
    response = client.post("/predict/batch", json={"instances": [row] * 50})
    assert response.status_code == 200
    ids = [p["prediction_id"] for p in response.json()["predictions"]]
    assert len(set(ids)) == 50
    assert ids == sorted(ids)


@pytest.mark.parametrize("count", [0, 51])
def test_batch_row_bounds(client: TestClient, row: dict[str, Any], count: int) -> None:
    response = client.post("/predict/batch", json={"instances": [row] * count})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "instances"]


def test_batch_error_points_at_the_row(
    client: TestClient, row: dict[str, Any], model: LoadedModel
) -> None:
    numeric = _spec(model, kind="numeric", nullable=False)
    rows = [row, {**row, numeric: SECRET}]
    response = client.post("/predict/batch", json={"instances": rows})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "instances", "1", numeric]
    assert SECRET not in response.text


@pytest.mark.parametrize("declared", [True, False])
def test_oversized_body_is_413_before_parsing(client: TestClient, declared: bool) -> None:
    body = b"{" + b" " * (64 * 1024) + b"}"
    if declared:
        response = client.post(
            "/predict", content=body, headers={"content-type": "application/json"}
        )
    else:

        def chunks() -> Any:
            yield body[:1000]
            yield body[1000:]

        response = client.post(
            "/predict", content=chunks(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert "limit of 65536 bytes" in response.json()["detail"]


def test_model_and_health_and_docs(client: TestClient, model: LoadedModel) -> None:
    assert client.get("/health").json() == {
        "status": "ok",
        "model": {"name": "churn", "version": "1"},
        "runtime": "onnx",
        "detail": None,
    }
    described = client.get("/model").json()
    assert described["digest"] == model.bundle.digest
    assert [f["name"] for f in described["features"]] == list(model.bundle.manifest.features.names)
    openapi = client.get("/openapi.json").json()
    assert "/predict/batch" in openapi["paths"]
    assert client.get("/docs").status_code == 200


def test_without_a_model_everything_is_503_with_the_reason() -> None:
    client = TestClient(create_app(None, load_error="model bundle refused: digest mismatch"))
    assert client.get("/health").status_code == 503
    for path in ("/predict", "/predict/batch"):
        response = client.post(path, json={"features": {}})
        assert response.status_code == 503
        assert response.json()["detail"] == "model bundle refused: digest mismatch"
    assert client.get("/model").status_code == 503


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_a_body_that_is_not_json_is_415_whatever_it_holds(
    client: TestClient, row: dict[str, Any], content_type: str | None
) -> None:
    """Any web page may POST text/plain or a form to 127.0.0.1 without a CORS preflight; such a
    body was parsed as JSON and scored (and its feedback stored)."""
    headers = {"content-type": content_type} if content_type else {}
    for path, body in (
        ("/predict", {"features": row}),
        ("/feedback", {"feedback": [{"prediction_id": "0" * 26, "label": 1}]}),
    ):
        response = client.post(path, content=json.dumps(body), headers=headers)
        assert response.status_code == 415, (path, response.text)
        assert "Content-Type: application/json" in response.json()["detail"]


def test_json_with_a_charset_or_a_json_suffix_is_accepted(
    client: TestClient, row: dict[str, Any]
) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        response = client.post(
            "/predict",
            content=json.dumps({"features": row}),
            headers={"content-type": content_type},
        )
        assert response.status_code == 200, response.text
