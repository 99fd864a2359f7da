"""The model registry port: registered versions, aliases and tags (MLflow behind it).

A registered version points at one stored bundle (its URI and manifest sha256 are tags) and,
once published, at the Lambda version that serves it. Aliases, never stages: ``champion`` serves
by default, ``challenger`` is what a rollout or A/B test compares with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from lambdaserve.kernel.artifacts import StoredBundle
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.manifest import TASKS, Task

CHAMPION = "champion"
CHALLENGER = "challenger"
TAG_BUNDLE_URI = "bundle_uri"
TAG_BUNDLE_SHA256 = "bundle_sha256"
TAG_BUNDLE_VERSION = "bundle_version"
#: The bundle's task (``Manifest.task``); versions registered before it existed are binary.
TAG_TASK = "task"
#: sha256 of the bundle archive as registered, checked before the archive is opened again.
TAG_ARCHIVE_SHA256 = "bundle_archive_sha256"
TAG_LAMBDA_VERSION = "lambda_version"
TAG_LAMBDA_FUNCTION = "lambda_function"
TAG_GATE = "promotion_gate"
#: The gate's outcome on a version: "passed", "failed" or "forced".
TAG_GATE_RESULT = "promotion_gate_result"


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    bundle_uri: str
    bundle_sha256: str
    metrics: dict[str, float] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None

    @property
    def bundle_version(self) -> str:
        return self.tags.get(TAG_BUNDLE_VERSION, "")

    @property
    def archive_sha256(self) -> str | None:
        return self.tags.get(TAG_ARCHIVE_SHA256) or None

    @property
    def task(self) -> Task:
        value = self.tags.get(TAG_TASK)
        return next((task for task in TASKS if task == value), "binary_classification")

    @property
    def lambda_version(self) -> str | None:
        return self.tags.get(TAG_LAMBDA_VERSION) or None


class ModelRegistry(Protocol):
    def register(
        self, stored: StoredBundle, bundle: VerifiedBundle, *, code_version: str
    ) -> tuple[RegisteredVersion, bool]:
        """Log a run for the bundle and register a version; ``(version, False)`` when a version
        with the same bundle sha256 already exists (nothing new is created)."""
        ...

    def find_by_digest(self, name: str, bundle_sha256: str) -> RegisteredVersion | None: ...

    def get(self, name: str, version: str) -> RegisteredVersion: ...

    def by_alias(self, name: str, alias: str) -> RegisteredVersion | None: ...

    def versions(self, name: str) -> list[RegisteredVersion]: ...

    def models(self) -> list[str]: ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None: ...
