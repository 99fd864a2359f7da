"""The settings contract: a synthesized function's environment is exactly what its settings model
reads (the model's fields, upper-cased), apart from the variables Powertools reads itself."""

from __future__ import annotations

from collections.abc import Mapping, Set

import pytest
from pydantic import BaseModel

#: What Powertools' logger reads; a function that emits metrics through it has the namespace too.
POWERTOOLS_LOGGER = frozenset({"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL"})
POWERTOOLS_METRICS = POWERTOOLS_LOGGER | {"POWERTOOLS_METRICS_NAMESPACE"}


def settings_variables(model: type[BaseModel]) -> set[str]:
    """The environment variables ``model`` reads."""
    return {name.upper() for name in model.model_fields}


def assert_environment_is_the_settings(
    environment: Mapping[str, object],
    model: type[BaseModel],
    *,
    powertools: Set[str] = POWERTOOLS_LOGGER,
    unset: Set[str] = frozenset(),
) -> set[str]:
    """Assert the environment holds every variable of ``model`` but ``unset``, and nothing else
    but ``powertools``; return the model's variables."""
    fields = settings_variables(model)
    assert set(environment) - powertools == fields - unset
    return fields


def settings_from[Settings: BaseModel](
    model: type[Settings], environment: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """``model`` as the function builds it from ``environment`` alone."""
    for key in settings_variables(model):
        monkeypatch.delenv(key, raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    return model()
