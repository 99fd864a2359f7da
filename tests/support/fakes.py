"""In-process fakes of our ports, one of each, for unit tests (integration tests use the real
adapters: moto's server, MLflow on SQLite, the local store).

``MemoryRegistry`` is a ``ModelRegistry`` of one model kept in dicts (``aliases`` maps an alias
to a version number, ``tags`` a version number to its tags, both open for tests to arrange and
inspect); ``FakeAlias`` and ``FakeGuard`` are the rollout controller's alias and guard ports;
``FakeFunction`` the published versions behind a ``FakeAlias`` (the function port, for pruning);
``MemoryStates`` its state store; ``MemoryFiles`` the drift reports' files and ``FakeTopic`` the
drift alarms' topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from lambdaserve.kernel.artifacts import StoredBundle
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.errors import (
    FunctionConflictError,
    FunctionVersionInUseError,
    LambdaserveError,
    ModelNotFoundError,
)
from lambdaserve.kernel.function_versions import LIVE_ALIAS, AliasRouting, PublishedVersion
from lambdaserve.registry.model_registry import TAG_TASK, RegisteredVersion
from lambdaserve.rollout.guard import GuardReport
from lambdaserve.rollout.state import RolloutState


class MemoryRegistry:
    """A registry of the model ``name`` (``churn`` by default) held in memory."""

    def __init__(
        self,
        *versions: RegisteredVersion,
        aliases: dict[str, str] | None = None,
        name: str = "churn",
    ) -> None:
        self.name = name
        self._versions = {v.version: replace(v, aliases=(), tags={}) for v in versions}
        self.aliases: dict[str, str] = dict(aliases or {})
        self.tags: dict[str, dict[str, str]] = {v.version: dict(v.tags) for v in versions}

    @classmethod
    def numbered(
        cls, tags: dict[str, dict[str, str]], *, aliases: dict[str, str] | None = None
    ) -> MemoryRegistry:
        """Versions ``tags``' keys, each pointing at a bundle of its own, with those tags."""
        return cls(
            *(
                RegisteredVersion("churn", number, f"file:///b/{number}", "a" * 64, tags=held)
                for number, held in tags.items()
            ),
            aliases=aliases,
        )

    def _check(self, name: str, version: str) -> None:
        if name != self.name or version not in self._versions:
            raise ModelNotFoundError(f"{name} has no registered version {version}")

    def register(
        self, stored: StoredBundle, bundle: VerifiedBundle, *, code_version: str
    ) -> tuple[RegisteredVersion, bool]:
        found = self.find_by_digest(stored.name, stored.digest)
        if found is not None:
            return found, False
        number = str(len(self._versions) + 1)
        self._versions[number] = RegisteredVersion(
            stored.name, number, stored.uri, stored.digest, metrics=dict(bundle.manifest.metrics)
        )
        self.tags[number] = {"code_version": code_version, TAG_TASK: bundle.manifest.task}
        return self.get(stored.name, number), True

    def find_by_digest(self, name: str, bundle_sha256: str) -> RegisteredVersion | None:
        return next(
            (v for v in self.versions(name) if v.bundle_sha256 == bundle_sha256),
            None,
        )

    def get(self, name: str, version: str) -> RegisteredVersion:
        self._check(name, version)
        held = tuple(alias for alias, number in self.aliases.items() if number == version)
        return replace(self._versions[version], aliases=held, tags=dict(self.tags[version]))

    def by_alias(self, name: str, alias: str) -> RegisteredVersion | None:
        number = self.aliases.get(alias)
        return self.get(name, number) if name == self.name and number else None

    def versions(self, name: str) -> list[RegisteredVersion]:
        if name != self.name:
            return []
        return [self.get(name, number) for number in sorted(self._versions, key=int)]

    def models(self) -> list[str]:
        return [self.name] if self._versions else []

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._check(name, version)
        self.aliases[alias] = version

    def delete_alias(self, name: str, alias: str) -> None:
        self.aliases.pop(alias, None)

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        self._check(name, version)
        self.tags[version] = {**self.tags[version], **tags}


class FakeAlias:
    """A ``live`` alias on function version 1, refusing writes made on a stale revision."""

    def __init__(self) -> None:
        self.routing = AliasRouting("live", "1", {}, "r0")
        self.writes = 0

    def read(self) -> AliasRouting:
        return self.routing

    def route(
        self, version: str, additional: dict[str, float], expected_revision: str
    ) -> AliasRouting:
        if expected_revision != self.routing.revision_id:
            raise FunctionConflictError("changed")
        self.writes += 1
        self.routing = AliasRouting("live", version, dict(additional), f"r{self.writes}")
        return self.routing


@dataclass
class FakeFunction:
    """Published versions ``numbers`` of a function whose live alias is ``live``; deleting one
    the alias points at is refused as Lambda does, and ``failure`` fails every deletion."""

    live: FakeAlias
    numbers: list[str] = field(default_factory=lambda: ["1", "2"])
    deleted: list[str] = field(default_factory=list)
    failure: LambdaserveError | None = None

    def versions(self) -> list[PublishedVersion]:
        return [
            PublishedVersion(n, f"file:///b/{n}", f"{int(n):064x}", f"churn {n}")
            for n in self.numbers
        ]

    def find(self, bundle_sha256: str) -> PublishedVersion | None:
        return next((v for v in self.versions() if v.bundle_sha256 == bundle_sha256), None)

    def publish(self, *, bundle_uri: str, bundle_sha256: str, description: str) -> PublishedVersion:
        number = str(max(int(n) for n in [*self.numbers, *self.deleted, "0"]) + 1)
        self.numbers.append(number)
        return PublishedVersion(number, bundle_uri, bundle_sha256, description)

    def alias(self, name: str = LIVE_ALIAS) -> AliasRouting | None:
        return self.live.routing if name == LIVE_ALIAS else None

    def point_alias(self, name: str, version: str, expected_revision: str | None) -> AliasRouting:
        return self.live.route(version, {}, expected_revision or self.live.routing.revision_id)

    def delete_version(self, version: str) -> None:
        if self.failure is not None:
            raise self.failure
        if version in self.live.routing.routed():
            raise FunctionVersionInUseError(f"the alias points at version {version}")
        if version in self.numbers:
            self.numbers.remove(version)
            self.deleted.append(version)


@dataclass
class FakeGuard:
    """Reports the ``alarms`` given (none: healthy) over ``samples`` challenger requests."""

    alarms: tuple[str, ...] = ()
    samples: int = 1000
    released: list[RolloutState] = field(default_factory=list)

    def evaluate(self, state: RolloutState, now: datetime) -> GuardReport:
        return GuardReport(self.alarms, self.samples)

    def release(self, state: RolloutState) -> None:
        self.released.append(state)


@dataclass
class MemoryStates:
    """The rollout state store in a dict, counting saves."""

    saved: dict[str, RolloutState] = field(default_factory=dict)
    saves: int = 0

    def load(self, model_name: str) -> RolloutState | None:
        return self.saved.get(model_name)

    def save(self, state: RolloutState) -> None:
        self.saves += 1
        self.saved[state.model_name] = state


@dataclass
class FakeHooks:
    """The controller's registry hooks, remembering what they were told."""

    promoted_states: list[RolloutState] = field(default_factory=list)
    rollbacks: list[tuple[RolloutState, str]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def promoted(self, state: RolloutState) -> None:
        self.promoted_states.append(state)
        self.events.append("promoted")

    def rolled_back(self, state: RolloutState, reason: str) -> None:
        self.rollbacks.append((state, reason))
        self.events.append(f"rolled_back: {reason}")


class MemoryFiles:
    """The ReportFiles port in a dict, counting writes."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.creates = 0

    def exists(self, name: str) -> bool:
        return name in self.files

    def create(self, name: str, body: bytes, content_type: str) -> bool:
        if name in self.files:
            return False
        self.creates += 1
        self.files[name] = body
        return True

    def read(self, name: str) -> bytes | None:
        return self.files.get(name)

    def names(self, prefix: str) -> list[str]:
        return sorted(n for n in self.files if n.startswith(prefix))


class FakeTopic:
    """The drift job's alarm port, keeping what it published."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []

    def publish(self, subject: str, message: str) -> str:
        self.published.append((subject, message))
        return "id"
