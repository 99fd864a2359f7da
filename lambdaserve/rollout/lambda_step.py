"""What the rollout Lambda does with an event: one controller step, mapped to the state machine.

The rollout state machine invokes it with ``{"model_name": "churn"}``; it runs one controller
step on the predict function's alias (``run_step``) and answers ``{"model_name", "status",
"weight", "wait_seconds", "reason", "finished"}``. A refusal answers ``status: "error"`` with the
reason (never a stack trace), which fails the execution. A transient failure (throttling, a 5xx,
a timeout, a lost race on the state) raises ``RetryableStepError`` instead, which the state
machine retries with backoff. The adapters come from ``lambdaserve.wiring.aws_rollout``.

With ``RolloutPorts.pruning`` set (``KEEP_VERSIONS``), a step that ends the rollout promoted or
rolled back then prunes the function's old versions by the rules it can check without the
registry (routed by the alias, or among the newest); the report is logged, and a failure is
logged too, never failing the step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdaserve.kernel.errors import LambdaserveError, TransientError
from lambdaserve.rollout.guard import GuardPort
from lambdaserve.rollout.live_alias import AliasPort
from lambdaserve.rollout.state import RolloutStateStore, RolloutStatus
from lambdaserve.rollout.step import RecordingHooks, run_step
from lambdaserve.rollout.version_pruning import VersionPruning, prune_after_rollout

LambdaHandler = Callable[[Any, Any], dict[str, Any]]


class RetryableStepError(Exception):
    """The step failed for now; the state machine retries errors of this name with backoff.

    Nothing is half-done when it is raised: the controller saves the state last, and a retry
    loads it again.
    """


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
    #: Old function versions pruned after the rollout ends (None: they are left alone).
    pruning: VersionPruning | None = None


def build_handler(
    adapters: RolloutPorts | Callable[[str], RolloutPorts],
    *,
    clock: Callable[[], datetime] | None = None,
) -> LambdaHandler:
    """The rollout function's handler over its adapters (the wiring's on AWS, fakes in tests),
    or over a function giving a model's adapters (one rollout function serves every model of a
    stage; an unknown model is a ``LambdaserveError``): the event validated, one step run, the
    answer the state machine reads."""
    ports_for = adapters if callable(adapters) else lambda _name: adapters
    logger = Logger(service="lambdaserve-rollout")

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: Any, context: Any) -> dict[str, Any]:
        name = event.get("model_name") if isinstance(event, dict) else None
        name = name if isinstance(name, str) else ""
        logger.append_keys(model_name=name)
        try:
            request = StepRequest.model_validate(event)
            ports = ports_for(request.model_name)
            result = run_step(
                request.model_name,
                alias=ports.alias,
                guard=ports.guard,
                states=ports.states,
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
        _prune(logger, ports.pruning, request.model_name, result.status)
        return output

    return handler


def _prune(logger: Logger, pruning: VersionPruning | None, model_name: str, status: str) -> None:
    """Prune after a step that ended the rollout; whatever happens, the step's answer stands."""
    try:
        after = prune_after_rollout(pruning, model_name, status)
    except Exception:
        logger.exception("pruning old function versions failed unexpectedly; the step stands")
        return
    if after is None:
        return
    report = after.report.model_dump(mode="json") if after.report is not None else None
    if after.warning is not None:
        logger.warning("pruning old function versions", extra={"reason": after.warning})
    if report is not None:
        logger.info("pruned old function versions", extra={"prune_report": report})


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
