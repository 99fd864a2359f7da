"""Durable rollout state in the local store: ``<store>/rollouts/<model>.json``, written
atomically, so a rerun of ``rollout resume`` continues where the last one stopped.

Saves are conditional, like S3's If-Match on AWS: a save replaces only the content this object
last loaded or wrote (checked under a lock file), so two controllers on one store cannot both
move a rollout from the same state."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from lambdaserve.kernel.errors import RolloutError, TransientRolloutError
from lambdaserve.rollout.state import RolloutState


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class RolloutStateFile:
    def __init__(self, root: Path) -> None:
        self.directory = Path(root) / "rollouts"
        self._seen: dict[str, str | None] = {}  # model -> digest last loaded or written

    def _path(self, model_name: str) -> Path:
        return self.directory / f"{model_name}.json"

    def load(self, model_name: str) -> RolloutState | None:
        path = self._path(model_name)
        if not path.is_file():
            self._seen[model_name] = None
            return None
        body = path.read_bytes()
        try:
            state = RolloutState.model_validate_json(body)
        except ValidationError as exc:
            raise RolloutError(
                f"rollout state {path} is not valid: {exc.errors()[0]['msg']}"
            ) from exc
        self._seen[state.model_name] = _digest(body)
        return state

    def now(self) -> datetime:
        """One machine holds the local store: its clock is the rollout's."""
        return datetime.now(UTC)

    def save(self, state: RolloutState) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(state.model_name)
        body = state.model_dump_json(indent=1).encode()
        with open(self.directory / f".{state.model_name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = _digest(path.read_bytes()) if path.is_file() else None
            if state.model_name in self._seen and current != self._seen[state.model_name]:
                raise TransientRolloutError(
                    f"another controller advanced this rollout of {state.model_name} since it "
                    f"was loaded from {path}; nothing was saved. Check `rollout status`, then "
                    "resume."
                )
            descriptor, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        self._seen[state.model_name] = _digest(body)
