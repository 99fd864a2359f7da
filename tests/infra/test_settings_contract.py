"""Contract: the predict function's environment is exactly what its settings model reads."""

from __future__ import annotations

import json

import pytest

from lambdaserve.kernel.capture import CapturePolicyDocument
from lambdaserve.serving.settings import ServingSettings
from tests.infra.conftest import Synthesized
from tests.support.settings_contract import (
    POWERTOOLS_METRICS,
    assert_environment_is_the_settings,
    settings_from,
)

pytestmark = pytest.mark.infra


def _environment(synth: Synthesized) -> dict[str, str]:
    resources = synth.template_json("serving")["Resources"]
    (function,) = [
        r
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and k.startswith("Predict")
    ]
    return function["Properties"]["Environment"]["Variables"]  # type: ignore[no-any-return]


#: A secret never travels in a function's environment: the function reads the salt of hashed
#: capture fields from the Secrets Manager secret CAPTURE_SALT_SECRET names. The mask and hash
#: names are local settings: on Lambda the policy is the SSM parameter's, which a published
#: version re-reads (its environment is frozen at publish).
SECRETS = {"CAPTURE_SALT", "CAPTURE_MASK", "CAPTURE_HASH"}
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:CaptureSalt-AbCdEf"


#: Only a model of a stage's ``models`` answers under a base path (/models/<name>).
BASE_PATH = {"API_BASE_PATH"}


def test_with_a_model_every_settings_field_is_set_and_nothing_else(cognito: Synthesized) -> None:
    assert_environment_is_the_settings(
        _environment(cognito),
        ServingSettings,
        powertools=POWERTOOLS_METRICS,
        unset=SECRETS | BASE_PATH,
    )


def test_without_a_model_the_function_starts_and_says_so(dev: Synthesized) -> None:
    assert_environment_is_the_settings(
        _environment(dev),
        ServingSettings,
        powertools=POWERTOOLS_METRICS,
        unset={"MODEL_URI", "MODEL_SHA256", "TRUSTED_TYPES", "CODE_DIRS"} | SECRETS | BASE_PATH,
    )


@pytest.mark.parametrize("name", ["dev", "cognito"])
def test_the_settings_model_accepts_the_synthesized_values(
    name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    synth: Synthesized = request.getfixturevalue(name)
    resolved = {
        # The salt secret's ARN is a cross-stack import; at runtime it is the ARN itself.
        key: value if isinstance(value, str) else SECRET_ARN
        for key, value in _environment(synth).items()
    }
    settings = settings_from(ServingSettings, resolved, monkeypatch)
    assert settings.max_body_bytes == int(_environment(synth)["MAX_BODY_BYTES"])
    assert settings.preferred_runtime == synth.config.runtime
    assert settings.model_uri == synth.config.model_uri
    assert not settings.capture_hash and not settings.capture_mask
    assert settings.capture_policy_parameter == f"/{synth.config.prefix}/capture-policy"
    # Every stage has the capture secret: it keys the feedback tokens even where nothing is hashed.
    assert settings.capture_salt_secret == SECRET_ARN
    assert not settings.capture_salt.get_secret_value()  # the salt itself never travels


@pytest.mark.parametrize("name", ["dev", "cognito"])
def test_the_capture_policy_parameter_is_the_stage_policy_and_only_predict_reads_it(
    name: str, request: pytest.FixtureRequest
) -> None:
    synth: Synthesized = request.getfixturevalue(name)
    resources = synth.template_json("serving")["Resources"]
    (parameter,) = [r for r in resources.values() if r["Type"] == "AWS::SSM::Parameter"]
    document = CapturePolicyDocument.model_validate_json(parameter["Properties"]["Value"])
    assert document.mask == frozenset(synth.config.capture_mask)
    assert document.hash == frozenset(synth.config.capture_hash)
    assert parameter["Properties"]["Name"] == _environment(synth)["CAPTURE_POLICY_PARAMETER"]
    readers = [
        key
        for key, r in resources.items()
        if r["Type"] == "AWS::IAM::Policy" and "ssm:GetParameter" in json.dumps(r)
    ]
    assert len(readers) == 1 and readers[0].startswith("PredictRole")
