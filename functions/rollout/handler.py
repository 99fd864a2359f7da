"""Lambda entry point of unattended rollouts: ``functions/rollout/handler.py:lambda_handler``.

Settings from the environment, adapters from the composition root (each model's on its first
step), one controller step per invocation (``lambdaserve.rollout.lambda_step``)."""

from __future__ import annotations

from functools import cache
from typing import Any

from lambdaserve.rollout.lambda_step import LambdaHandler, RolloutPorts, build_handler
from lambdaserve.wiring.aws_rollout import RolloutSettings, rollout_ports

_settings = cache(RolloutSettings)


@cache
def _ports(model_name: str) -> RolloutPorts:
    return rollout_ports(_settings(), model_name)


@cache
def _handler() -> LambdaHandler:
    return build_handler(_ports)


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    return _handler()(event, context)
