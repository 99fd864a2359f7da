"""Lambda entry point of unattended rollouts: ``functions/rollout/handler.py:lambda_handler``.

Settings from the environment, adapters from the composition root, one controller step per
invocation (``lambdaserve.rollout.lambda_step``); built on the first invocation.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from lambdaserve.rollout.lambda_step import LambdaHandler, build_handler
from lambdaserve.wiring.aws_rollout import RolloutSettings, rollout_ports


@cache
def _handler() -> LambdaHandler:
    return build_handler(rollout_ports(RolloutSettings()))


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    return _handler()(event, context)
