"""Durable rollout state in S3: ``s3://<bucket>/<prefix><model>.json``, one object per model.

Saves are conditional, so two controllers cannot both advance one rollout: ``load`` remembers the
object's ETag and ``save`` writes with ``If-Match`` on it (``If-None-Match: *`` when ``load`` found
no state, or when this store never loaded that model). The loser of a race gets a
``RolloutError`` and nothing it decided is recorded; it reloads and ticks again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from lambdaserve.aws.clients import aws_client, error_code, is_transient
from lambdaserve.kernel.errors import RolloutError, TransientRolloutError
from lambdaserve.rollout.state import RolloutState

_MISSING_KEY = frozenset({"NoSuchKey", "404"})
_LOST_RACE = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


class S3RolloutState:
    """``RolloutStateStore`` on S3 with optimistic concurrency.

    >>> states = S3RolloutState("my-artifacts")  # doctest: +SKIP
    >>> state = states.load("churn")  # doctest: +SKIP
    >>> states.save(tick(state, ...))  # doctest: +SKIP
    """

    def __init__(
        self, bucket: str, *, prefix: str = "rollouts/", client: Any | None = None
    ) -> None:
        if not bucket or "/" in bucket:
            raise RolloutError(f"{bucket!r} is not an S3 bucket name")
        self.bucket = bucket
        self.prefix = prefix
        self._client: Any = client if client is not None else aws_client("s3")
        self._etags: dict[str, str | None] = {}  # model -> ETag last read or written; None: absent
        self._server_time: tuple[datetime, float] | None = None  # S3's Date, monotonic then

    def key(self, model_name: str) -> str:
        return f"{self.prefix}{model_name}.json"

    def load(self, model_name: str) -> RolloutState | None:
        key = self.key(model_name)
        with self._errors(f"load rollout state s3://{self.bucket}/{key}"):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) not in _MISSING_KEY or "BucketName" in exc.response.get(
                    "Error", {}
                ):
                    raise
                self._note_server_time(exc.response)
                self._etags[model_name] = None
                return None
            self._note_server_time(response)
            body = response["Body"].read()
        try:
            state = RolloutState.model_validate_json(body)
        except ValidationError as exc:
            raise RolloutError(
                f"rollout state s3://{self.bucket}/{key} is not valid: {exc.errors()[0]['msg']}"
            ) from exc
        self._etags[model_name] = str(response["ETag"])
        return state

    def save(self, state: RolloutState) -> None:
        key = self.key(state.model_name)
        etag = self._etags.get(state.model_name)
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        with self._errors(f"save rollout state s3://{self.bucket}/{key}"):
            try:
                response = self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=state.model_dump_json(indent=1).encode(),
                    ContentType="application/json",
                    **condition,
                )
            except ClientError as exc:
                if error_code(exc) in _LOST_RACE or (etag and error_code(exc) in _MISSING_KEY):
                    raise TransientRolloutError(
                        f"another controller advanced this rollout of {state.model_name} (or "
                        f"removed its state) since it was loaded from s3://{self.bucket}/{key}; "
                        "nothing was saved. Check `rollout status`, then resume."
                    ) from exc
                raise
        self._etags[state.model_name] = str(response["ETag"])

    def now(self) -> datetime:
        """S3's clock, the one time source of every controller of a rollout (a laptop, the
        rollout Lambda): the ``Date`` of the last state read, plus the time elapsed since on
        this machine's monotonic clock. A laptop 31 minutes fast no longer skips a 30-minute
        hold. Before any read, this machine's clock."""
        if self._server_time is None:
            return datetime.now(UTC)
        at, monotonic = self._server_time
        return at + timedelta(seconds=time.monotonic() - monotonic)

    def _note_server_time(self, response: dict[str, Any]) -> None:
        date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if not date:
            return
        try:
            at = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return
        self._server_time = (at.astimezone(UTC), time.monotonic())

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            error = TransientRolloutError if is_transient(exc) else RolloutError
            raise error(f"could not {action}: {exc}") from exc
