"""What the drift Lambda does with an event: judge the scheduled window, answer its summary.

EventBridge Scheduler invokes it with the target input
``{"time": "<aws.scheduler.scheduled-time>", "model_name": "<name>"}``, ``model_name`` optional
(absent: every model captured in the window; given: only that model, whose captures alone are
read). It runs the same use case as ``lambdaserve drift run`` (``lambdaserve.drift.scheduled``)
over the adapters ``lambdaserve.wiring.aws_drift`` assembles: captures and reports in S3,
references from the bundles, alarms to SNS, metrics as EMF. It answers a summary of the window
and the reports it wrote; any failure raises (so the scheduler retries, then dead-letters) with
a message that says what went wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from lambdaserve.drift.job import DriftJobError
from lambdaserve.drift.scheduled import DriftPorts, DriftSchedule, run_scheduled_drift
from lambdaserve.kernel.capture import MODEL_NAME_PATTERN
from lambdaserve.kernel.errors import LambdaserveError

LambdaHandler = Callable[[Any, Any], dict[str, Any]]


class DriftEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    time: AwareDatetime
    model_name: str | None = Field(default=None, pattern=MODEL_NAME_PATTERN)


_EVENT_SHAPE = (
    'the event must be {"time": "<ISO 8601 time with offset>"} or {"time": ..., "model_name": '
    '"<model>"}; set the schedule target input to {"time": "<aws.scheduler.scheduled-time>"}'
)


def parse_event(event: Any) -> DriftEvent:
    """The scheduled event, or DriftJobError saying what is wrong with it."""
    try:
        return DriftEvent.model_validate(event)
    except ValidationError as exc:
        fields = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        problems = []
        if "model_name" in fields:
            given = event.get("model_name") if isinstance(event, dict) else None
            problems.append(
                f"the event's model_name {repr(given)[:80]} is not a model name (a letter or "
                "digit, then up to 63 letters, digits, '.', '_' or '-'); omit it to judge every "
                "model"
            )
        if not fields or fields - {"model_name"}:
            problems.append(_EVENT_SHAPE)
        raise DriftJobError("; ".join(problems)) from exc


def build_handler(adapters: DriftPorts, schedule: DriftSchedule) -> LambdaHandler:
    """The drift function's handler over its adapters (the wiring's on AWS, fakes in tests):
    the event validated, the scheduled window judged, its summary answered."""
    logger = Logger(service="lambdaserve-drift")

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: Any, context: Any) -> dict[str, Any]:
        request = parse_event(event)
        logger.append_keys(scheduled_time=request.time.isoformat(), model_name=request.model_name)
        try:
            run = run_scheduled_drift(
                request.time, adapters, schedule, model_name=request.model_name
            )
        except LambdaserveError as exc:
            logger.error("drift job failed", extra={"reason": str(exc)})
            raise
        summary = run.summary.model_dump(mode="json")
        logger.info("drift job", extra=summary)
        return summary

    return handler
