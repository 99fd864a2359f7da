"""Lambda entry point of the scheduled drift job: ``functions/drift/handler.py:lambda_handler``.

Settings from the environment, adapters and schedule from the composition root, the scheduled
window judged per invocation (``lambdaserve.drift.lambda_job``); built on the first invocation.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from lambdaserve.drift.lambda_job import LambdaHandler, build_handler
from lambdaserve.wiring.aws_drift import DriftSettings, drift_ports, drift_schedule


@cache
def _handler() -> LambdaHandler:
    settings = DriftSettings()
    return build_handler(drift_ports(settings), drift_schedule(settings))


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    return _handler()(event, context)
