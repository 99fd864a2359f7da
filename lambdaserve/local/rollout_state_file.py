"""Durable rollout state in the local store: ``<store>/rollouts/<model>.json``, written
atomically, so a rerun of ``rollout resume`` continues where the last one stopped."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import ValidationError

from lambdaserve.core.errors import RolloutError
from lambdaserve.core.rollout_state import RolloutState


class RolloutStateFile:
    def __init__(self, root: Path) -> None:
        self.directory = Path(root) / "rollouts"

    def _path(self, model_name: str) -> Path:
        return self.directory / f"{model_name}.json"

    def load(self, model_name: str) -> RolloutState | None:
        path = self._path(model_name)
        if not path.is_file():
            return None
        try:
            return RolloutState.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            raise RolloutError(
                f"rollout state {path} is not valid: {exc.errors()[0]['msg']}"
            ) from exc

    def save(self, state: RolloutState) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(descriptor, "w") as handle:
            handle.write(state.model_dump_json(indent=1))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self._path(state.model_name))
