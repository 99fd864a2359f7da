"""The function port: model versions are Lambda versions (DESIGN decision 2).

Publishing a model version sets the function's ``MODEL_URI``/``MODEL_SHA256`` and publishes an
immutable function version pinned to that bundle; pruning deletes old versions no alias routes.
Adapters: the AWS Lambda API, and a JSON file in the local store that behaves the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

LIVE_ALIAS = "live"
#: The function's unpublished configuration: never a published version, never deleted.
LATEST = "$LATEST"


@dataclass(frozen=True)
class PublishedVersion:
    function_version: str
    bundle_uri: str
    bundle_sha256: str
    description: str


@dataclass(frozen=True)
class AliasRouting:
    """An alias: its primary version plus at most one additional version with a weight."""

    alias: str
    version: str
    additional: dict[str, float] = field(default_factory=dict)
    revision_id: str = ""

    def routed(self) -> set[str]:
        """Every version the alias points at, a weight of 0 included (Lambda refuses deleting
        any of them)."""
        return {self.version, *self.additional}

    def shares(self) -> dict[str, float]:
        """Traffic share per function version (sums to 1)."""
        extra = sum(self.additional.values())
        if not 0.0 <= extra <= 1.0:
            raise ValueError(f"alias {self.alias}: additional weights sum to {extra}, not [0, 1]")
        return {self.version: 1.0 - extra, **self.additional}


class FunctionPublisher(Protocol):
    def find(self, bundle_sha256: str) -> PublishedVersion | None:
        """The published version pinned to this bundle, if any (publishing is idempotent)."""
        ...

    def publish(self, *, bundle_uri: str, bundle_sha256: str, description: str) -> PublishedVersion:
        """Point the function at the bundle, wait for the update, publish a version."""
        ...

    def versions(self) -> list[PublishedVersion]: ...

    def alias(self, name: str = LIVE_ALIAS) -> AliasRouting | None: ...

    def point_alias(self, name: str, version: str, expected_revision: str | None) -> AliasRouting:
        """Send all of the alias's traffic to ``version``: create it when ``expected_revision``
        is None, else update it only if it is still at that revision (FunctionConflictError
        otherwise)."""
        ...

    def delete_version(self, version: str) -> None:
        """Delete one published version (a number, never ``$LATEST``): FunctionVersionInUseError
        when an alias points at it (nothing is deleted), nothing when it is already gone."""
        ...
