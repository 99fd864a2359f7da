"""The stage configuration fails fast with messages that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import StageConfigError, load_stage_config

pytestmark = pytest.mark.infra


def _context(stage: dict[str, Any], name: str = "dev") -> dict[str, Any]:
    """A stage serving one model, named churn unless the stage names it."""
    named = "model_name" in stage or "model_uri" in stage or "models" in stage
    return {
        "stage": name,
        "lambdaserve:stages": {name: stage if named else {"model_name": "churn", **stage}},
    }


def test_defaults_are_safe() -> None:
    config = load_stage_config(_context({}))
    assert config.architecture == "arm64"
    assert config.auth_mode == "iam"
    assert config.cors_allowed_origins == ()
    assert config.waf is True


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ({"memory_mb": 64}, "memory_mb: Input should be greater than or equal to 128"),
        ({"timeout_seconds": 60}, "timeout_seconds: Input should be less than or equal to 29"),
        ({"architecture": "sparc"}, "architecture: Input should be 'arm64' or 'x86_64'"),
        (
            {"model_uri": "s3://bucket/models/churn/1/bundle.tar.gz"},
            "model_uri and model_sha256 go together",
        ),
        ({"model_uri": "http://x/y", "model_sha256": "a" * 64}, "model_uri: String should match"),
        ({"log_retention_days": 31}, "log_retention_days must be one of"),
        ({"cors_allowed_origins": ["*"]}, "cannot contain '\\*'"),
        ({"auth_mode": "basic"}, "auth_mode: Input should be 'iam' or 'cognito'"),
        ({"unknown": 1}, "unknown: Extra inputs are not permitted"),
        ({"alarms": {"evaluation_periods": 1, "datapoints_to_alarm": 3}}, "cannot exceed"),
    ],
)
def test_invalid_values_name_the_field(stage: dict[str, Any], message: str) -> None:
    with pytest.raises(StageConfigError, match=message):
        load_stage_config(_context(stage))


def test_unknown_stage_lists_the_known_ones() -> None:
    with pytest.raises(StageConfigError, match=r"no stage 'prod'.*stages: dev"):
        load_stage_config(_context({}), stage="prod")


def test_a_feature_is_masked_or_hashed_not_both() -> None:
    assert load_stage_config(_context({"capture_hash": ["region"]})).capture_hash == ("region",)
    with pytest.raises(StageConfigError, match="either masked or hashed, not both: region"):
        load_stage_config(_context({"capture_hash": ["region"], "capture_mask": ["region"]}))


def test_cognito_needs_its_pool() -> None:
    with pytest.raises(StageConfigError, match="cognito_user_pool_arn"):
        load_stage_config(_context({"auth_mode": "cognito"}))


def _served(stage: dict[str, Any]) -> tuple[str, str]:
    (model,) = load_stage_config(_context(stage)).served_models
    return model.name, model.bundle_prefix


def test_the_served_model_narrows_the_bundle_prefix() -> None:
    """Named by model_name or by model_uri's key: its function reads only its bundles."""
    uri = {"model_uri": "s3://bucket/team/models/churn/3/bundle.tar.gz", "model_sha256": "a" * 64}
    assert _served({"model_name": "fraud"}) == ("fraud", "models/fraud/")
    assert _served(uri) == ("churn", "models/churn/")
    assert _served({**uri, "model_name": "churn"}) == ("churn", "models/churn/")
    with pytest.raises(StageConfigError, match="model_uri names model 'churn', not 'fraud'"):
        load_stage_config(_context({**uri, "model_name": "fraud"}))
    with pytest.raises(StageConfigError, match="model_name: String should match"):
        load_stage_config(_context({"model_name": "../x"}))
