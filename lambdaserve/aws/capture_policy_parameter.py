"""The stage's capture policy from an SSM parameter, re-read every minute.

A published Lambda version keeps the environment it was published with, so a policy carried in
``CAPTURE_MASK``/``CAPTURE_HASH`` would stay what it was on the versions already serving: the
champion would go on capturing a field the stage has since masked. The serving stack writes the
policy to one parameter instead (``CAPTURE_POLICY_PARAMETER`` names it) and every version reads
it at init and again once it is ``max_age_seconds`` old, so a deploy that masks a field reaches
every serving version within a minute. A version that cannot read it at init serves nothing; a
refresh that fails skips capture (counted) until a read succeeds, retried every few seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pydantic import ValidationError

from lambdaserve.aws.clients import aws_client, error_code
from lambdaserve.kernel.capture import CapturePolicy, CapturePolicyDocument
from lambdaserve.kernel.errors import CapturePolicyUnavailableError

log = logging.getLogger(__name__)
MAX_AGE_SECONDS = 60.0
RETRY_SECONDS = 5.0


class ParameterCapturePolicy:
    """A ``CapturePolicySource`` over one SSM String parameter holding a
    ``CapturePolicyDocument``; the salt comes from the stage's secret, never the parameter."""

    def __init__(
        self,
        name: str,
        *,
        salt: str,
        max_age_seconds: float | None = None,
        retry_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._salt = salt
        self._max_age = MAX_AGE_SECONDS if max_age_seconds is None else max_age_seconds
        self._retry = RETRY_SECONDS if retry_seconds is None else retry_seconds
        self._clock = clock
        self._policy: CapturePolicy | None = None
        self._fresh_until = float("-inf")
        self._retry_at = float("-inf")
        self.reads = 0

    def expire(self) -> None:
        """Read the parameter again on the next request (after a SnapStart restore, whose clock
        is not the snapshot's)."""
        self._fresh_until = float("-inf")
        self._retry_at = float("-inf")

    def current(self) -> CapturePolicy:
        now = self._clock()
        if self._policy is not None and now < self._fresh_until:
            return self._policy
        if now < self._retry_at:
            raise CapturePolicyUnavailableError("the capture policy could not be read just now")
        try:
            policy = self._read()
        except CapturePolicyUnavailableError:
            self._retry_at = now + self._retry
            raise
        # The same policy keeps its identity: callers re-check a policy only when it changed.
        if policy != self._policy:
            if self._policy is not None:
                log.warning("capture policy changed: mask %s, hash %s", policy.mask, policy.hash)
            self._policy = policy
        self._fresh_until = now + self._max_age
        return self._policy

    def _read(self) -> CapturePolicy:
        from botocore.exceptions import BotoCoreError, ClientError

        self.reads += 1
        detail: Exception
        try:
            value = aws_client("ssm").get_parameter(Name=self.name)["Parameter"]["Value"]
            return CapturePolicyDocument.model_validate_json(value).policy(self._salt)
        except ClientError as exc:
            reason, detail = error_code(exc) or "error", exc
        except BotoCoreError as exc:
            reason, detail = type(exc).__name__, exc
        except (ValidationError, ValueError) as exc:
            reason, detail = "not a capture policy document", exc
        log.error("capture policy parameter %s unread (%s): %s", self.name, reason, detail)
        raise CapturePolicyUnavailableError(f"the capture policy could not be read ({reason})")
