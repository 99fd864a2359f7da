"""API Gateway events (REST v1 and HTTP v2 payloads) through the real Lambda handler.

Each handler is built in-process with ``build_lambda_handler(ServingSettings(...))``, as
``functions/predict/handler.py`` does at import, for an ONNX- and a scikit-learn-served bundle.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.serving.settings import ServingSettings
from lambdaserve.wiring.aws_predict import LambdaHandler, build_lambda_handler

pytestmark = [
    pytest.mark.integration,
    # Mangum 0.22 probes for a loop with asyncio.get_event_loop(), which Python 3.12-3.13 answer
    # with this DeprecationWarning (and then create the loop) when none is set, as on Lambda.
]

ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SECRET = "SECRET-VALUE-123"
SMALL_BODY_LIMIT = 2048
V1_KEYS = {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}
V2_KEYS = {"statusCode", "headers", "body", "isBase64Encoded", "cookies"}
PREDICT_EVENTS = ["rest_api_post_predict", "http_api_post_predict", "http_api_post_predict_base64"]
BATCH_EVENTS = ["rest_api_post_predict_batch", "http_api_post_predict_batch"]
HEALTH_EVENTS = ["rest_api_get_health", "http_api_get_health"]

BuildHandler = Callable[[ServingSettings], LambdaHandler]


@dataclass(frozen=True)
class Served:
    bundle: VerifiedBundle
    handler: LambdaHandler
    small_body_handler: LambdaHandler


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    text: str
    raw: dict[str, Any]

    @property
    def json(self) -> Any:
        return json.loads(self.text)


def invoke(handler: LambdaHandler, event: dict[str, Any], context: object) -> Reply:
    response = handler(event, context)
    body = response.get("body") or ""
    text = base64.b64decode(body).decode() if response.get("isBase64Encoded") else body
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return Reply(status=response["statusCode"], headers=headers, text=text, raw=response)


def ulid_millis(prediction_id: str) -> int:
    value = 0
    for char in prediction_id[:10]:
        value = value * 32 + CROCKFORD.index(char)
    return value


def settings_for(target: VerifiedBundle | Path, cache: Path, **overrides: Any) -> ServingSettings:
    uri = target.path if isinstance(target, VerifiedBundle) else target
    return ServingSettings(model_uri=str(uri), bundle_cache_dir=cache, **overrides)


@pytest.fixture(
    scope="module", params=["churn_bundle", "churn_hgb_bundle"], ids=["onnx", "sklearn"]
)
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    build_handler: BuildHandler,
) -> Served:
    bundle: VerifiedBundle = request.getfixturevalue(request.param)
    cache = tmp_path_factory.mktemp("cache")
    return Served(
        bundle=bundle,
        handler=build_handler(settings_for(bundle, cache)),
        small_body_handler=build_handler(
            settings_for(bundle, cache, max_body_bytes=SMALL_BODY_LIMIT)
        ),
    )


def assert_gateway_shape(reply: Reply, event_name: str) -> None:
    response = reply.raw
    assert isinstance(response["statusCode"], int)
    assert isinstance(response["body"], str)
    assert response["isBase64Encoded"] is False
    assert reply.headers["content-type"] == "application/json"
    if event_name.startswith("rest_api"):
        assert set(response) == V1_KEYS
        assert isinstance(response["multiValueHeaders"], dict)
    else:
        assert set(response) <= V2_KEYS
        assert "multiValueHeaders" not in response


@pytest.mark.parametrize("event_name", HEALTH_EVENTS)
def test_health_names_the_model(
    served: Served, make_event: Any, lambda_context: Any, event_name: str
) -> None:
    reply = invoke(served.handler, make_event(event_name), lambda_context)

    assert reply.status == 200
    assert_gateway_shape(reply, event_name)
    manifest = served.bundle.manifest
    assert reply.json == {
        "status": "ok",
        "model": {"name": manifest.name, "version": manifest.version},
        "runtime": manifest.preferred_runtime,
        "detail": None,
    }


def test_model_describes_the_verified_bundle(
    served: Served, make_event: Any, lambda_context: Any
) -> None:
    reply = invoke(served.handler, make_event("rest_api_get_model"), lambda_context)

    assert reply.status == 200, reply.text
    assert_gateway_shape(reply, "rest_api_get_model")
    body = reply.json
    manifest = served.bundle.manifest
    assert body["digest"] == served.bundle.digest
    assert body["runtime"] == manifest.preferred_runtime
    assert [f["name"] for f in body["features"]] == list(manifest.features.names)
    assert body["classes"] == list(manifest.classes)


@pytest.mark.parametrize("event_name", PREDICT_EVENTS)
def test_predict_scores_one_row(
    served: Served,
    make_event: Any,
    lambda_context: Any,
    traffic_rows: list[dict[str, Any]],
    event_name: str,
) -> None:
    before_ms = int(time.time() * 1000)
    event = make_event(event_name, {"features": traffic_rows[0]})
    reply = invoke(served.handler, event, lambda_context)

    assert reply.status == 200, reply.text
    assert_gateway_shape(reply, event_name)
    manifest = served.bundle.manifest
    assert reply.headers["x-model-name"] == manifest.name
    assert reply.headers["x-model-version"] == manifest.version
    body = reply.json
    assert set(body) == {
        "prediction_id",
        "model",
        "probability",
        "label",
        "unseen_categories",
        "feedback_token",
    }
    assert ULID.match(body["prediction_id"])
    assert before_ms <= ulid_millis(body["prediction_id"]) <= int(time.time() * 1000)
    assert body["model"] == {"name": manifest.name, "version": manifest.version}
    assert 0.0 <= body["probability"] <= 1.0
    assert body["label"] in manifest.classes
    positive = body["probability"] >= manifest.decision_threshold
    assert body["label"] == (manifest.positive_class if positive else manifest.negative_class)
    assert body["unseen_categories"] == []


def _known_categories(bundle: VerifiedBundle, row: dict[str, Any]) -> bool:
    return all(
        row[spec.name] is None or row[spec.name] in spec.categories
        for spec in bundle.manifest.features.categorical
    )


def test_predict_flags_unseen_categories(
    served: Served, make_event: Any, lambda_context: Any, traffic_rows: list[dict[str, Any]]
) -> None:
    known = next(row for row in traffic_rows if _known_categories(served.bundle, row))
    row = {**known, "plan_tier": "enterprise"}
    reply = invoke(
        served.handler, make_event("rest_api_post_predict", {"features": row}), lambda_context
    )

    assert reply.status == 200, reply.text
    assert reply.json["unseen_categories"] == ["plan_tier"]


def test_categories_of_ordinary_traffic_are_known(
    served: Served, make_event: Any, lambda_context: Any, traffic_rows: list[dict[str, Any]]
) -> None:
    """Every category the churn data produces was seen in training, so none is flagged."""
    reply = invoke(
        served.handler,
        make_event("rest_api_post_predict_batch", {"instances": traffic_rows[:200]}),
        lambda_context,
    )

    assert reply.status == 200, reply.text
    flagged = sorted({name for p in reply.json["predictions"] for name in p["unseen_categories"]})
    assert flagged == []


@pytest.mark.parametrize("event_name", BATCH_EVENTS)
def test_batch_of_100_rows_returns_100_sortable_ids(
    served: Served,
    make_event: Any,
    lambda_context: Any,
    traffic_rows: list[dict[str, Any]],
    event_name: str,
) -> None:
    rows = traffic_rows[:100]
    reply = invoke(served.handler, make_event(event_name, {"instances": rows}), lambda_context)

    assert reply.status == 200, reply.text
    assert_gateway_shape(reply, event_name)
    predictions = reply.json["predictions"]
    assert len(predictions) == 100
    ids = [p["prediction_id"] for p in predictions]
    assert all(ULID.match(i) for i in ids)
    assert len(set(ids)) == 100
    assert ids == sorted(ids), "ids are issued in row order and sort that way"
    classes = served.bundle.manifest.classes
    assert all(0.0 <= p["probability"] <= 1.0 and p["label"] in classes for p in predictions)
    assert len({p["probability"] for p in predictions}) > 10, "rows are scored individually"

    later = invoke(
        served.handler,
        make_event("rest_api_post_predict", {"features": rows[0]}),
        lambda_context,
    )
    assert later.json["prediction_id"] > ids[-1], "a later request sorts after"


def test_batch_matches_single_predictions(
    served: Served, make_event: Any, lambda_context: Any, traffic_rows: list[dict[str, Any]]
) -> None:
    rows = traffic_rows[100:105]
    batch = invoke(
        served.handler,
        make_event("rest_api_post_predict_batch", {"instances": rows}),
        lambda_context,
    ).json["predictions"]
    singles = [
        invoke(
            served.handler, make_event("rest_api_post_predict", {"features": row}), lambda_context
        ).json
        for row in rows
    ]

    for one, many in zip(singles, batch, strict=True):
        assert one["probability"] == pytest.approx(many["probability"], abs=1e-6)
        assert one["label"] == many["label"]


def _replace(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**row, **changes}


def _without(row: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != name}


# (case id, event, body builder from a valid row, expected loc of the first error, expected type)
INVALID_REQUESTS: list[tuple[str, str, Any, list[str], str]] = [
    (
        "string-for-number",
        "rest_api_post_predict",
        lambda row: json.dumps({"features": _replace(row, tenure_months=SECRET)}),
        ["body", "features", "tenure_months"],
        "float_type",
    ),
    (
        "number-in-string",
        "http_api_post_predict",
        lambda row: json.dumps({"features": _replace(row, monthly_charges="123456789.5")}),
        ["body", "features", "monthly_charges"],
        "float_type",
    ),
    (
        "number-for-category",
        "http_api_post_predict_base64",
        lambda row: json.dumps({"features": _replace(row, contract=123456789)}),
        ["body", "features", "contract"],
        "string_type",
    ),
    (
        "overlong-category",
        "rest_api_post_predict",
        lambda row: json.dumps({"features": _replace(row, region=SECRET * 20)}),
        ["body", "features", "region"],
        "string_too_long",
    ),
    (
        "not-finite",
        "rest_api_post_predict",
        lambda row: json.dumps({"features": _replace(row, age=float("nan"))}),
        ["body", "features", "age"],
        "finite_number",
    ),
    (
        "null-where-training-had-none",
        "http_api_post_predict",
        lambda row: json.dumps({"features": _replace(row, contract=None)}),
        ["body", "features", "contract"],
        "null_not_allowed",
    ),
    (
        "missing-column",
        "rest_api_post_predict",
        lambda row: json.dumps({"features": _without(row, "age")}),
        ["body", "features", "age"],
        "missing",
    ),
    (
        "unknown-column",
        "http_api_post_predict",
        lambda row: json.dumps({"features": _replace(row, favourite_colour=SECRET)}),
        ["body", "features", "favourite_colour"],
        "extra_forbidden",
    ),
    (
        "invalid-json",
        "rest_api_post_predict",
        lambda row: '{"features": {"tenure_months": ' + SECRET,
        ["body"],
        "json_invalid",
    ),
    (
        "bad-row-in-batch",
        "rest_api_post_predict_batch",
        lambda row: json.dumps(
            {"instances": [row] * 7 + [_replace(row, num_devices=SECRET)] + [row] * 2}
        ),
        ["body", "instances", "7", "num_devices"],
        "float_type",
    ),
    (
        "empty-batch",
        "http_api_post_predict_batch",
        lambda row: json.dumps({"instances": []}),
        ["body", "instances"],
        "too_short",
    ),
]


@pytest.mark.parametrize(
    ("event_name", "make_body", "loc", "error_type"),
    [pytest.param(*case[1:], id=case[0]) for case in INVALID_REQUESTS],
)
def test_invalid_rows_are_422_without_echoing_values(
    served: Served,
    make_event: Any,
    lambda_context: Any,
    traffic_rows: list[dict[str, Any]],
    event_name: str,
    make_body: Any,
    loc: list[str],
    error_type: str,
) -> None:
    body = make_body(traffic_rows[2])
    reply = invoke(served.handler, make_event(event_name, raw=body), lambda_context)

    assert reply.status == 422, reply.text
    assert_gateway_shape(reply, event_name)
    detail = reply.json["detail"]
    assert detail, "at least one field error"
    assert all(set(error) == {"loc", "msg", "type"} for error in detail)
    assert {"loc": loc, "type": error_type} in [
        {"loc": e["loc"], "type": e["type"]} for e in detail
    ]
    for echoed in (SECRET, "123456789"):
        assert echoed not in reply.text
        assert echoed not in json.dumps(reply.raw)


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "streamed"])
@pytest.mark.parametrize("event_name", [*BATCH_EVENTS, "http_api_post_predict_base64"])
def test_body_over_the_limit_is_413(
    served: Served,
    make_event: Any,
    lambda_context: Any,
    traffic_rows: list[dict[str, Any]],
    event_name: str,
    declare_length: bool,
) -> None:
    rows = [_replace(row, region=SECRET) for row in traffic_rows[:100]]
    payload = {"instances": rows} if "batch" in event_name else {"features": rows[0] | {"x": rows}}
    event = make_event(event_name, payload, declare_length=declare_length)
    assert len(json.dumps(payload)) > SMALL_BODY_LIMIT

    reply = invoke(served.small_body_handler, event, lambda_context)

    assert reply.status == 413, reply.text
    assert_gateway_shape(reply, event_name)
    assert f"limit of {SMALL_BODY_LIMIT} bytes" in reply.json["detail"]
    assert SECRET not in reply.text


@pytest.mark.parametrize("event_name", ["rest_api_post_predict", "http_api_post_predict_base64"])
def test_body_under_the_limit_is_served(
    served: Served,
    make_event: Any,
    lambda_context: Any,
    traffic_rows: list[dict[str, Any]],
    event_name: str,
) -> None:
    payload = {"features": traffic_rows[3]}
    assert len(json.dumps(payload)) < SMALL_BODY_LIMIT
    event = make_event(event_name, payload, declare_length=True)

    reply = invoke(served.small_body_handler, event, lambda_context)

    assert reply.status == 200, reply.text


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no-model-uri", "MODEL_URI is not set"),
        ("tampered-onnx", "failed its sha256 verification"),
        ("wrong-sha256", "failed its sha256 verification"),
        ("missing-bundle", "model bundle could not be loaded"),
    ],
)
def test_no_verified_model_is_503_saying_why(
    make_event: Any,
    lambda_context: Any,
    traffic_rows: list[dict[str, Any]],
    churn_bundle: VerifiedBundle,
    bundle_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    build_handler: BuildHandler,
    case: str,
    reason: str,
) -> None:
    monkeypatch.delenv("MODEL_URI", raising=False)
    monkeypatch.delenv("MODEL_SHA256", raising=False)
    cache = tmp_path / "cache"
    if case == "no-model-uri":
        settings = ServingSettings(bundle_cache_dir=cache)  # read from the environment
        assert settings.model_uri is None
    elif case == "tampered-onnx":
        _flip_a_byte(bundle_copy / "model.onnx")
        settings = settings_for(bundle_copy, cache)
    elif case == "wrong-sha256":
        settings = settings_for(churn_bundle, cache, model_sha256="0" * 64)
    else:
        settings = settings_for(tmp_path / "no-such-bundle", cache)
    handler = build_handler(settings)

    replies = {
        "health-v1": invoke(handler, make_event("rest_api_get_health"), lambda_context),
        "health-v2": invoke(handler, make_event("http_api_get_health"), lambda_context),
        "model": invoke(handler, make_event("rest_api_get_model"), lambda_context),
        "predict": invoke(
            handler,
            make_event("rest_api_post_predict", {"features": traffic_rows[0]}),
            lambda_context,
        ),
        "batch": invoke(
            handler,
            make_event("http_api_post_predict_batch", {"instances": traffic_rows[:3]}),
            lambda_context,
        ),
    }

    for name, reply in replies.items():
        assert reply.status == 503, (name, reply.text)
        assert reply.headers["content-type"] == "application/json"
        assert reason in reply.json["detail"], name
        assert "Traceback" not in reply.text
    assert replies["health-v1"].json["status"] == "unavailable"
    assert "Traceback" not in capsys.readouterr().out


def _emf_blobs(stdout: str) -> list[dict[str, Any]]:
    blobs = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if "_aws" in record:
                blobs.append(record)
    return blobs


@pytest.mark.parametrize("bundle_name", ["churn_bundle", "churn_hgb_bundle"])
def test_emf_metrics_on_stdout(
    request: pytest.FixtureRequest,
    make_event: Any,
    lambda_context: Any,
    traffic_rows: list[dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    build_handler: BuildHandler,
    bundle_name: str,
) -> None:
    bundle: VerifiedBundle = request.getfixturevalue(bundle_name)
    handler = build_handler(settings_for(bundle, tmp_path / "cache"))
    capsys.readouterr()

    invoke(
        handler, make_event("rest_api_post_predict", {"features": traffic_rows[0]}), lambda_context
    )
    (single,) = _emf_blobs(capsys.readouterr().out)
    invoke(
        handler,
        make_event("http_api_post_predict_batch", {"instances": traffic_rows[:100]}),
        lambda_context,
    )
    (batch,) = _emf_blobs(capsys.readouterr().out)
    invoke(
        handler,
        make_event("rest_api_post_predict", {"features": {"age": SECRET}}),
        lambda_context,
    )
    (refused,) = _emf_blobs(capsys.readouterr().out)
    invoke(
        handler,
        make_event("rest_api_post_feedback", {"feedback": [{"prediction_id": "x", "label": 9}]}),
        lambda_context,
    )
    (bad_feedback,) = _emf_blobs(capsys.readouterr().out)

    (directive,) = single["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "lambdaserve"
    names = {metric["Name"] for metric in directive["Metrics"]}
    assert {"Predictions", "Latency", "ModelLatency", "Requests"} <= names
    assert any("model_version" in dimensions for dimensions in directive["Dimensions"])
    assert single["model_version"] == bundle.manifest.version
    assert single["model_name"] == bundle.manifest.name
    assert single["Predictions"] == [1.0]
    assert single["Latency"][0] > 0
    assert batch["Predictions"] == [100.0]
    assert refused["ClientErrors"] == [1.0]
    # The guard's 4XX share: every prediction request counts, refused ones too; feedback not.
    assert single["PredictionRequests"] == batch["PredictionRequests"] == [1.0]
    assert refused["PredictionRequests"] == [1.0]
    assert "PredictionRequests" not in bad_feedback
    assert "Predictions" not in refused
    assert SECRET not in json.dumps(refused)
    # The rollout guard alarms on ClientErrors: bad feedback must not count as bad predictions.
    assert "ClientErrors" not in bad_feedback and bad_feedback["OtherRequestErrors"] == [1.0]


def test_handlers_in_one_process_keep_their_own_model_dimensions(
    churn_bundle: VerifiedBundle,
    churn_hgb_bundle: VerifiedBundle,
    make_event: Any,
    lambda_context: Any,
    traffic_rows: list[dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    build_handler: BuildHandler,
) -> None:
    first = build_handler(settings_for(churn_bundle, tmp_path / "cache"))
    build_lambda_handler(settings_for(churn_hgb_bundle, tmp_path / "cache"))
    capsys.readouterr()

    invoke(
        first, make_event("rest_api_post_predict", {"features": traffic_rows[0]}), lambda_context
    )

    (blob,) = _emf_blobs(capsys.readouterr().out)
    assert blob["model_version"] == churn_bundle.manifest.version


def _under(event: dict[str, Any], base: str) -> dict[str, Any]:
    """``event`` as API Gateway sends it for a model's route of a stage's ``models``."""
    moved = json.loads(json.dumps(event))
    path = moved["path"]
    moved["path"] = moved["resource"] = f"{base}{path}"
    moved["requestContext"]["resourcePath"] = f"{base}{path}"
    moved["requestContext"]["path"] = f"/prod{base}{path}"
    return moved


def test_a_model_of_a_models_stage_answers_under_its_base_path(
    churn_bundle: VerifiedBundle,
    build_handler: BuildHandler,
    make_event: Any,
    lambda_context: Any,
    traffic_rows: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    """API Gateway sends the whole path (``/models/churn/predict``); API_BASE_PATH strips it
    before the app's routes, and the prediction metrics still see a prediction."""
    base = "/models/churn"
    handler = build_handler(settings_for(churn_bundle, tmp_path / "cache", api_base_path=base))
    event = _under(make_event("rest_api_post_predict", {"features": traffic_rows[0]}), base)

    predicted = invoke(handler, event, lambda_context)
    health = invoke(handler, _under(make_event("rest_api_get_health"), base), lambda_context)
    elsewhere = invoke(
        handler,
        _under(make_event("rest_api_get_health"), "/models/fraud"),
        lambda_context,
    )

    assert predicted.status == 200, predicted.text
    assert predicted.json["model"]["name"] == churn_bundle.manifest.name
    assert health.status == 200 and health.json["status"] == "ok"
    assert elsewhere.status == 404  # another model's path is not this function's route
