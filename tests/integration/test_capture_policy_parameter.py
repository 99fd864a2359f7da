"""A capture-policy change reaches versions already serving: the predict function reads the
stage's policy from an SSM parameter (moto's server on 127.0.0.1) at init and again once it is
a minute old, instead of the environment a published version is frozen with."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from lambdaserve.aws import capture_policy_parameter
from lambdaserve.aws.capture_policy_parameter import ParameterCapturePolicy
from lambdaserve.aws.clients import aws_client
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.errors import CapturePolicyUnavailableError
from lambdaserve.serving.settings import ServingSettings
from lambdaserve.wiring.aws_predict import LambdaHandler
from tests.integration.conftest import Row
from tests.integration.test_capture_load import stdout_lines
from tests.integration.test_capture_salt import SALT, secret_arn

pytestmark = pytest.mark.integration
__all__ = ["secret_arn"]  # the fixture, shared with the salt tests


def _document(mask: Sequence[str] = (), hash_: Sequence[str] = ()) -> str:
    return json.dumps({"enabled": True, "mask": list(mask), "hash": list(hash_)})


@pytest.fixture
def parameter(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    name = f"/lambdaserve-test-{uuid.uuid4().hex[:8]}/capture-policy"
    aws_client("ssm").put_parameter(Name=name, Value=_document(), Type="String")
    return name


def _set(name: str, value: str) -> None:
    aws_client("ssm").put_parameter(Name=name, Value=value, Type="String", Overwrite=True)


def test_a_policy_change_reaches_a_version_already_serving(
    churn_bundle: VerifiedBundle,
    traffic_rows: list[Row],
    tmp_path: Path,
    parameter: str,
    secret_arn: str,
    make_event: Any,
    lambda_context: Any,
    build_handler: Callable[[ServingSettings], LambdaHandler],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One execution environment of a published version (its environment fixed), before and
    after the stage masks ``region`` and hashes ``contract``: no republish, no cold start."""
    monkeypatch.setattr(capture_policy_parameter, "MAX_AGE_SECONDS", 0.0)
    handler = build_handler(
        ServingSettings(
            model_uri=str(churn_bundle.path),
            bundle_cache_dir=tmp_path,
            capture_salt_secret=secret_arn,
            capture_policy_parameter=parameter,
        )
    )
    event = make_event("rest_api_post_predict", {"features": traffic_rows[0]})
    capsys.readouterr()
    assert handler(event, lambda_context)["statusCode"] == 200
    (before,), _ = stdout_lines(capsys)
    assert before.features["region"] == traffic_rows[0]["region"]

    _set(parameter, _document(mask=["region"], hash_=["contract"]))
    assert handler(event, lambda_context)["statusCode"] == 200
    (after,), _ = stdout_lines(capsys)
    assert after.features["region"] is None
    assert str(after.features["contract"]).startswith("sha256:")
    assert SALT not in json.dumps(after.features)

    # A policy naming no feature of this model stops serving: nothing answered, nothing captured.
    _set(parameter, _document(mask=["Region"]))
    refused = handler(event, lambda_context)
    health = handler(make_event("rest_api_get_health"), lambda_context)
    captures, _ = stdout_lines(capsys)
    assert refused["statusCode"] == 503 and "Region" in json.loads(refused["body"])["detail"]
    assert health["statusCode"] == 503
    assert captures == []


def test_a_version_that_cannot_read_the_policy_serves_nothing(
    churn_bundle: VerifiedBundle,
    traffic_rows: list[Row],
    tmp_path: Path,
    secret_arn: str,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    make_event: Any,
    lambda_context: Any,
    build_handler: Callable[[ServingSettings], LambdaHandler],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    handler = build_handler(
        ServingSettings(
            model_uri=str(churn_bundle.path),
            bundle_cache_dir=tmp_path,
            capture_salt_secret=secret_arn,
            capture_policy_parameter="/no/such/parameter",
        )
    )
    capsys.readouterr()
    response = handler(
        make_event("rest_api_post_predict", {"features": traffic_rows[0]}), lambda_context
    )
    captures, _ = stdout_lines(capsys)
    assert response["statusCode"] == 503
    detail = json.loads(response["body"])["detail"]
    assert "capture policy could not be read" in detail and "/no/such" not in detail
    assert captures == []


def test_refreshes_are_cached_and_a_failed_refresh_is_retried_later(parameter: str) -> None:
    now = [0.0]
    source = ParameterCapturePolicy(
        parameter, salt=SALT, max_age_seconds=60, retry_seconds=5, clock=lambda: now[0]
    )
    first = source.current()
    assert source.current() is first and source.reads == 1  # cached for a minute
    now[0] = 61
    assert source.current() is first and source.reads == 2  # same policy, same object
    _set(parameter, "not json")
    now[0] = 122
    with pytest.raises(CapturePolicyUnavailableError):
        source.current()
    with pytest.raises(CapturePolicyUnavailableError):
        source.current()  # within the retry pause: not read again
    assert source.reads == 3
    _set(parameter, _document(mask=["age"]))
    now[0] = 128
    changed = source.current()
    assert changed.mask == {"age"} and changed.salt == SALT and source.reads == 4
