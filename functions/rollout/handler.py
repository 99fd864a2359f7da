"""Lambda entry point of unattended rollouts: ``functions/rollout/handler.py:lambda_handler``.

The rollout state machine invokes it with ``{"model_name": "churn"}``; it runs one controller
step on the predict function's alias (``lambdaserve.rollout.step.run_step``) and answers
``{"model_name", "status", "weight", "wait_seconds", "reason", "finished"}``. A refusal answers
``status: "error"`` with the reason (never a stack trace), which fails the execution. A
transient failure (throttling, a 5xx, a timeout, a lost race on the state) raises
``RetryableStepError`` instead, which the state machine retries with backoff.

Configured by the environment (``FUNCTION_NAME``, ``ALIAS_NAME``, ``STATE_BUCKET``,
``STATE_PREFIX``; see RolloutSettings), read once per execution environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from lambdaserve.kernel.errors import LambdaserveError, TransientError
from lambdaserve.kernel.function_versions import LIVE_ALIAS
from lambdaserve.rollout.controller import AliasPort
from lambdaserve.rollout.guard import GuardPort
from lambdaserve.rollout.state import RolloutStateStore, RolloutStatus
from lambdaserve.rollout.step import RecordingHooks, run_step

LambdaHandler = Callable[[Any, Any], dict[str, Any]]


class RetryableStepError(Exception):
    """The step failed for now; the state machine retries errors of this name with backoff.

    Nothing is half-done when it is raised: the controller saves the state last, and a retry
    loads it again.
    """


class RolloutSettings(BaseSettings):
    """Environment of the rollout function: names only, set by the serving stack."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    function_name: str = Field(min_length=1, description="the predict function whose alias moves")
    alias_name: str = Field(default=LIVE_ALIAS, min_length=1)
    state_bucket: str = Field(min_length=3, description="bucket holding the durable state")
    state_prefix: str = Field(default="rollouts/", description="key prefix of the state")
    guard_alarm_names: tuple[str, ...] = Field(
        default=(),
        description="the serving stack's own alarms (alias errors, throttles and p99, API 5XX) "
        "that roll a rollout back besides the challenger's (a JSON list)",
    )


class StepRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_name: str = Field(min_length=1)


class StepOutput(BaseModel):
    """What the state machine reads: ``finished`` ends the loop, ``status`` picks the end."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_name: str
    status: RolloutStatus | Literal["error"]
    weight: float | None
    wait_seconds: int
    reason: str
    finished: bool


@dataclass(frozen=True)
class RolloutPorts:
    alias: AliasPort
    guard: GuardPort
    states: RolloutStateStore


def aws_ports(settings: RolloutSettings) -> RolloutPorts:
    """The AWS adapters: the Lambda alias, its CloudWatch guard alarms, the state in S3."""
    from lambdaserve.aws.cloudwatch_guard import CloudWatchGuard
    from lambdaserve.aws.lambda_alias import LambdaAlias
    from lambdaserve.aws.s3_rollout_state import S3RolloutState

    return RolloutPorts(
        alias=LambdaAlias(settings.function_name, alias=settings.alias_name),
        guard=CloudWatchGuard(
            settings.function_name,
            alias=settings.alias_name,
            extra_alarm_names=settings.guard_alarm_names,
        ),
        states=S3RolloutState(settings.state_bucket, prefix=settings.state_prefix),
    )


def build_handler(
    settings: RolloutSettings | None = None,
    *,
    ports: Callable[[RolloutSettings], RolloutPorts] = aws_ports,
    clock: Callable[[], datetime] | None = None,
) -> LambdaHandler:
    """The handler, with its settings and adapters built once (tests pass their own ports)."""
    settings = settings or RolloutSettings()
    adapters = ports(settings)
    logger = Logger(service="lambdaserve-rollout")

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: Any, context: Any) -> dict[str, Any]:
        name = event.get("model_name") if isinstance(event, dict) else None
        name = name if isinstance(name, str) else ""
        logger.append_keys(model_name=name)
        try:
            request = StepRequest.model_validate(event)
            result = run_step(
                request.model_name,
                alias=adapters.alias,
                guard=adapters.guard,
                states=adapters.states,
                hooks=RecordingHooks(),
                now=clock() if clock is not None else None,  # None: the state store's clock
            )
        except ValidationError:
            return _error(logger, name, 'the event must be {"model_name": "<model name>"}')
        except TransientError as exc:
            logger.warning("rollout step will be retried", extra={"reason": str(exc)})
            raise RetryableStepError(str(exc)) from exc
        except LambdaserveError as exc:
            return _error(logger, name, str(exc))
        except Exception:
            logger.exception("rollout step failed unexpectedly")
            request_id = getattr(context, "aws_request_id", "unknown")
            return _error(
                logger, name, f"unexpected error; see the rollout function's logs ({request_id})"
            )
        output = StepOutput(
            model_name=request.model_name,
            status=result.status,
            weight=result.weight,
            wait_seconds=result.wait_seconds,
            reason=result.reason,
            finished=result.finished,
        ).model_dump()
        logger.info("rollout step", extra=output)
        return output

    return handler


def _error(logger: Logger, model_name: str, reason: str) -> dict[str, Any]:
    logger.warning("rollout step failed", extra={"reason": reason})
    return StepOutput(
        model_name=model_name,
        status="error",
        weight=None,
        wait_seconds=0,
        reason=reason,
        finished=True,
    ).model_dump()


@cache
def _default_handler() -> LambdaHandler:
    return build_handler()


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """The entry point; settings and AWS adapters are built on the first invocation."""
    return _default_handler()(event, context)
