"""Contract: the predict function's environment is exactly what its settings model reads."""

from __future__ import annotations

import pytest

from lambdaserve.serving.settings import ServingSettings
from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.infra
POWERTOOLS = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}


def _environment(synth: Synthesized) -> dict[str, str]:
    resources = synth.template_json("serving")["Resources"]
    (function,) = [
        r
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and k.startswith("Predict")
    ]
    return function["Properties"]["Environment"]["Variables"]  # type: ignore[no-any-return]


#: A secret never travels in a function's environment; the stack refuses capture_hash instead.
SECRETS = {"CAPTURE_SALT"}


def test_with_a_model_every_settings_field_is_set_and_nothing_else(cognito: Synthesized) -> None:
    environment = _environment(cognito)
    fields = {name.upper() for name in ServingSettings.model_fields}
    assert set(environment) - POWERTOOLS == fields - SECRETS


def test_without_a_model_the_function_starts_and_says_so(dev: Synthesized) -> None:
    environment = _environment(dev)
    fields = {name.upper() for name in ServingSettings.model_fields}
    assert set(environment) - POWERTOOLS == fields - {"MODEL_URI", "MODEL_SHA256"} - SECRETS


@pytest.mark.parametrize("name", ["dev", "cognito"])
def test_the_settings_model_accepts_the_synthesized_values(
    name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    synth: Synthesized = request.getfixturevalue(name)
    for key in {n.upper() for n in ServingSettings.model_fields}:
        monkeypatch.delenv(key, raising=False)
    for key, value in _environment(synth).items():
        monkeypatch.setenv(key, value)
    settings = ServingSettings()
    assert settings.max_body_bytes == int(_environment(synth)["MAX_BODY_BYTES"])
    assert settings.preferred_runtime == synth.config.runtime
    assert settings.model_uri == synth.config.model_uri
