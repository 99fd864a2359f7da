"""The predict function reads the salt of hashed capture fields from Secrets Manager (moto's
server on 127.0.0.1) once per execution environment; without it, nothing is served."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lambdaserve.aws.clients import aws_client
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.serving.settings import ServingSettings
from lambdaserve.wiring.aws_predict import LambdaHandler
from tests.integration.conftest import Row
from tests.integration.test_capture_load import stdout_lines

pytestmark = pytest.mark.integration
SALT = "k3bQ9x2LmT7vR4nW8pZ1cY6dF0hJ5sA2"


@pytest.fixture
def secret_arn(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    client = aws_client("secretsmanager", endpoint_url=moto_endpoint)
    name = f"capture-salt-{uuid.uuid4().hex[:8]}"
    return str(client.create_secret(Name=name, SecretString=SALT)["ARN"])


Predict = Callable[[str], dict[str, Any]]


@pytest.fixture
def predict_with_salt_from(
    churn_bundle: VerifiedBundle,
    traffic_rows: list[Row],
    tmp_path: Path,
    make_event: Any,
    lambda_context: Any,
    build_handler: Callable[[ServingSettings], LambdaHandler],
    capsys: pytest.CaptureFixture[str],
) -> Predict:
    """Build the handler with ``region`` hashed and the salt in the given secret (its init reads
    the secret), then send it the first traffic row; return the API response."""

    def predict(secret: str) -> dict[str, Any]:
        settings = ServingSettings(
            model_uri=str(churn_bundle.path),
            bundle_cache_dir=tmp_path,
            capture_hash=frozenset({"region"}),
            capture_salt_secret=secret,
        )
        handler = build_handler(settings)
        capsys.readouterr()
        event = make_event("rest_api_post_predict", {"features": traffic_rows[0]})
        return handler(event, lambda_context)

    return predict


def test_hashed_fields_are_salted_with_the_secret(
    predict_with_salt_from: Predict,
    secret_arn: str,
    traffic_rows: list[Row],
    capsys: pytest.CaptureFixture[str],
) -> None:
    response = predict_with_salt_from(secret_arn)
    assert response["statusCode"] == 200, response["body"]
    (capture,), _ = stdout_lines(capsys)
    region = traffic_rows[0]["region"]
    expected = hashlib.sha256(f"{SALT}:{region}".encode()).hexdigest()[:16]
    assert capture.features["region"] == f"sha256:{expected}"
    assert SALT not in capsys.readouterr().out  # the salt itself is never printed


def test_without_the_salt_nothing_is_served(
    predict_with_salt_from: Predict, secret_arn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = secret_arn.replace("capture-salt-", "no-such-secret-")
    response = predict_with_salt_from(missing)
    assert response["statusCode"] == 503
    detail = json.loads(response["body"])["detail"]
    assert "capture secret unavailable" in detail and "ResourceNotFoundException" not in detail
    assert missing not in detail  # the secret's ARN is logged, not told to API clients
    captures, _ = stdout_lines(capsys)
    assert captures == []  # no capture without the salt, hashed or not


def test_hashing_needs_a_salt_or_its_secret() -> None:
    with pytest.raises(ValueError, match="CAPTURE_HASH needs CAPTURE_SALT or CAPTURE_SALT_SECRET"):
        ServingSettings(capture_hash=frozenset({"region"}))


def test_feedback_tokens_verify_across_versions_sharing_the_stage_secret(
    churn_bundle: VerifiedBundle,
    traffic_rows: list[Row],
    tmp_path: Path,
    secret_arn: str,
    moto_endpoint: str,
    make_event: Any,
    lambda_context: Any,
    build_handler: Callable[[ServingSettings], LambdaHandler],
) -> None:
    """Two execution environments (a champion's and a challenger's version) derive one token
    key from the stage's capture secret, so feedback may reach either; a stage with another
    secret (or a forger without it) is refused."""
    other = aws_client("secretsmanager", endpoint_url=moto_endpoint).create_secret(
        Name=f"other-{uuid.uuid4().hex[:8]}", SecretString="another stage's secret, 32 chars"
    )["ARN"]

    def handler_with(secret: str) -> LambdaHandler:
        return build_handler(
            ServingSettings(
                model_uri=str(churn_bundle.path),
                bundle_cache_dir=tmp_path,
                capture_salt_secret=secret,
            )
        )

    champion, challenger, elsewhere = (
        handler_with(secret_arn),
        handler_with(secret_arn),
        handler_with(str(other)),
    )
    answer = json.loads(
        champion(
            make_event("rest_api_post_predict", {"features": traffic_rows[0]}), lambda_context
        )["body"]
    )
    outcome = {
        "feedback": [
            {
                "prediction_id": answer["prediction_id"],
                "label": 1,
                "feedback_token": answer["feedback_token"],
            }
        ]
    }
    accepted = challenger(make_event("rest_api_post_feedback", outcome), lambda_context)
    refused = elsewhere(make_event("rest_api_post_feedback", outcome), lambda_context)
    assert accepted["statusCode"] == 202, accepted["body"]
    assert refused["statusCode"] == 422
    assert json.loads(refused["body"])["detail"][0]["loc"][-1] == "feedback_token"
    assert SALT not in answer["feedback_token"]
