"""The local backend of the function port: Lambda versions and aliases kept in one JSON file.

```
<root>/functions/<function>.json   {"environment", "versions", "aliases", "revision_id"}
<root>/functions/<function>.lock   held (flock, exclusive) by every writer
```
Versions count from 1 and are immutable, as on Lambda. Every write happens under the lock as
read → check → write, lands atomically (temporary file + ``os.replace``) and changes the file's
``revision_id``; an alias carries its own ``revision_id`` so its updates can be guarded like
Lambda's ``UpdateAlias(RevisionId=...)``. Publishing never creates an alias: ``live`` is created
once by ``create_alias``, as the CDK stack does on AWS. Deleting a version removes its record
under the same lock, refused while any alias points at it; ``last_version`` remembers the highest
number ever published, so a number is never reused after its version was deleted (as on Lambda).
"""

from __future__ import annotations

import fcntl
import math
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdaserve.kernel.errors import (
    FunctionConflictError,
    FunctionError,
    FunctionVersionInUseError,
)
from lambdaserve.kernel.function_versions import LIVE_ALIAS, AliasRouting, PublishedVersion

MODEL_URI = "MODEL_URI"
MODEL_SHA256 = "MODEL_SHA256"


class _Version(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    environment: dict[str, str]
    description: str
    published_at: datetime


class _Alias(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    additional: dict[str, float] = Field(default_factory=dict)
    revision_id: str


class _FunctionState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: dict[str, str] = Field(default_factory=dict)
    versions: list[_Version] = Field(default_factory=list)
    aliases: dict[str, _Alias] = Field(default_factory=dict)
    revision_id: str = ""
    #: The highest version number ever published (0: none, or a file older than deletions).
    last_version: int = 0

    def next_version(self) -> int:
        return max([self.last_version, *(int(v.version) for v in self.versions)]) + 1


class LocalFunctionVersions:
    """Publish, find and list versions of a local "function"; create, read and move aliases."""

    def __init__(self, root: Path, function_name: str = "predict") -> None:
        self.function_name = function_name
        self.path = Path(root).resolve() / "functions" / f"{function_name}.json"
        self._lock_path = self.path.with_suffix(".lock")

    def find(self, bundle_sha256: str) -> PublishedVersion | None:
        return _find(self._read(), bundle_sha256)

    def versions(self) -> list[PublishedVersion]:
        return [_published(record) for record in self._read().versions]

    def alias(self, name: str = LIVE_ALIAS) -> AliasRouting | None:
        record = self._read().aliases.get(name)
        return _routing(name, record) if record else None

    def publish(self, *, bundle_uri: str, bundle_sha256: str, description: str) -> PublishedVersion:
        """Pin a new version to the bundle; the version already pinned to it, if there is one."""

        def change(state: _FunctionState) -> tuple[_FunctionState, PublishedVersion]:
            existing = _find(state, bundle_sha256)
            if existing is not None:
                return state, existing
            environment = {**state.environment, MODEL_URI: bundle_uri, MODEL_SHA256: bundle_sha256}
            number = state.next_version()
            record = _Version(
                version=str(number),
                environment=environment,
                description=description,
                published_at=datetime.now(UTC),
            )
            versions = [*state.versions, record]
            update = {"environment": environment, "versions": versions, "last_version": number}
            return state.model_copy(update=update), _published(record)

        return self._transact(change)

    def delete_version(self, version: str) -> None:
        """Remove a published version's record; refused while an alias points at it."""

        def change(state: _FunctionState) -> tuple[_FunctionState, None]:
            aliases = sorted(
                n for n, a in state.aliases.items() if version in _routing(n, a).routed()
            )
            if aliases:
                raise FunctionVersionInUseError(
                    f"version {version} of function {self.function_name} was kept: alias(es) "
                    f"{', '.join(aliases)} point at it"
                )
            remaining = [v for v in state.versions if v.version != version]
            if len(remaining) == len(state.versions):
                return state, None  # already gone, as Lambda answers
            update = {"versions": remaining, "last_version": state.next_version() - 1}
            return state.model_copy(update=update), None

        if not version.isdigit():
            raise FunctionError(
                f"{version!r} is not a published version number of function "
                f"{self.function_name}; only published versions are deleted"
            )
        self._transact(change)

    def point_alias(self, name: str, version: str, expected_revision: str | None) -> AliasRouting:
        if expected_revision is None:
            return self.create_alias(name, version)
        return self.update_alias(name, version, {}, expected_revision)

    def create_alias(self, name: str, version: str) -> AliasRouting:
        """Create an alias sending all traffic to ``version``; fails if the alias exists."""

        def change(state: _FunctionState) -> tuple[_FunctionState, AliasRouting]:
            if name in state.aliases:
                raise FunctionError(f"function {self.function_name} already has alias {name!r}")
            self._check_routing(state, version, {})
            record = _Alias(version=version, revision_id=_new_revision())
            return _with_alias(state, name, record), _routing(name, record)

        return self._transact(change)

    def update_alias(
        self,
        name: str,
        version: str,
        additional: Mapping[str, float],
        expected_revision_id: str,
    ) -> AliasRouting:
        """Route the alias, only if it is still at ``expected_revision_id`` (else conflict)."""

        def change(state: _FunctionState) -> tuple[_FunctionState, AliasRouting]:
            current = state.aliases.get(name)
            if current is None:
                raise FunctionError(
                    f"function {self.function_name} has no alias {name!r}; create it first"
                )
            if current.revision_id != expected_revision_id:
                raise FunctionConflictError(
                    f"alias {name!r} of function {self.function_name} was changed by someone "
                    f"else (revision {current.revision_id}, expected {expected_revision_id}); "
                    "it was left as it is. Read the alias again and retry."
                )
            self._check_routing(state, version, additional)
            record = _Alias(
                version=version, additional=dict(additional), revision_id=_new_revision()
            )
            return _with_alias(state, name, record), _routing(name, record)

        return self._transact(change)

    def _check_routing(
        self, state: _FunctionState, version: str, additional: Mapping[str, float]
    ) -> None:
        problem = _routing_problem({r.version for r in state.versions}, version, additional)
        if problem:
            raise FunctionError(f"function {self.function_name}: {problem}; nothing was changed")

    def _read(self) -> _FunctionState:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return _FunctionState()
        try:
            return _FunctionState.model_validate_json(raw)
        except ValidationError as exc:
            raise FunctionError(f"{self.path} is not a valid function file: {exc}") from exc

    def _transact[T](self, change: Callable[[_FunctionState], tuple[_FunctionState, T]]) -> T:
        """Read → check → write under the exclusive lock; no write when nothing changed."""
        with self._locked():
            state = self._read()
            changed, result = change(state)
            if changed is not state:
                self._write(changed.model_copy(update={"revision_id": _new_revision()}))
        return result

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def _write(self, state: _FunctionState) -> None:
        descriptor, temporary = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(state.model_dump_json(indent=2).encode() + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _new_revision() -> str:
    return uuid.uuid4().hex


def _find(state: _FunctionState, bundle_sha256: str) -> PublishedVersion | None:
    matches = (r for r in state.versions if r.environment.get(MODEL_SHA256) == bundle_sha256)
    record = next(matches, None) if bundle_sha256 else None
    return _published(record) if record else None


def _routing_problem(
    published: set[str], version: str, additional: Mapping[str, float]
) -> str | None:
    """Lambda's rules: published versions only, at most one extra version, weights in [0, 1]."""
    unknown = sorted(({version} | set(additional)) - published)
    if unknown:
        return f"version(s) {', '.join(unknown)} not published"
    if len(additional) > 1:
        return "at most one additional version can take traffic"
    if version in additional:
        return f"version {version} cannot also be the additional version"
    if any(not (math.isfinite(w) and 0.0 <= w <= 1.0) for w in additional.values()):
        return "additional weights must be within [0, 1]"
    return None


def _with_alias(state: _FunctionState, name: str, record: _Alias) -> _FunctionState:
    return state.model_copy(update={"aliases": {**state.aliases, name: record}})


def _published(record: _Version) -> PublishedVersion:
    return PublishedVersion(
        function_version=record.version,
        bundle_uri=record.environment.get(MODEL_URI, ""),
        bundle_sha256=record.environment.get(MODEL_SHA256, ""),
        description=record.description,
    )


def _routing(name: str, record: _Alias) -> AliasRouting:
    return AliasRouting(
        alias=name,
        version=record.version,
        additional=dict(record.additional),
        revision_id=record.revision_id,
    )
