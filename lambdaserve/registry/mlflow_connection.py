"""How lambdaserve talks to an MLflow server, its registry's or the user's own: fail fast, and
tell a connection failure from MLflow's other errors."""

from __future__ import annotations

import logging
import os

#: Fail fast against an unreachable server instead of MLflow's minutes of retries (a value the
#: user set wins).
FAST_FAIL_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
_CONNECTION_ERRORS = {"ConnectionError", "ConnectTimeout", "NewConnectionError", "ReadTimeout"}
_CONNECTION_TEXT = ("Max retries exceeded", "Failed to establish", "timed out")


def fail_fast() -> None:
    for key, value in FAST_FAIL_ENV.items():
        os.environ.setdefault(key, value)
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # no schema-migration chatter


def connection_failed(exc: BaseException) -> bool:
    """True when an MLflow error was caused by a connection failure (it wraps requests')."""
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ in _CONNECTION_ERRORS:
            return True
        seen = seen.__cause__ or seen.__context__
    return any(text in str(exc) for text in _CONNECTION_TEXT)
