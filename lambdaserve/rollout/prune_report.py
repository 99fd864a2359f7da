"""What pruning published function versions reports: each version kept (and why), deleted or
skipped, the registry versions untagged, and what stopped it; the CLI prints it as a table or
JSON, the rollout Lambda logs it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

KeepReason = Literal["routed", "champion", "challenger", "newest"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KeptVersion(_Frozen):
    function_version: str
    reasons: tuple[KeepReason, ...]
    model_version: str | None = None


class PrunedVersion(_Frozen):
    """A version deleted (in a dry run: one that would be)."""

    function_version: str
    model_version: str | None = None


class SkippedVersion(_Frozen):
    """A version planned for deletion and kept after all (the alias or Lambda said no)."""

    function_version: str
    reason: str


class PruneReport(_Frozen):
    model_name: str
    function_name: str
    keep: int
    dry_run: bool
    kept: tuple[KeptVersion, ...] = ()
    deleted: tuple[PrunedVersion, ...] = ()
    skipped: tuple[SkippedVersion, ...] = ()
    #: Registry versions of the model whose ``lambda_version`` tag was (would be) cleared.
    untagged: tuple[str, ...] = ()
    #: What stopped the deletions part-way (the ones before it are done and reported).
    error: str | None = None


class AfterRollout(_Frozen):
    """Pruning after a rollout ended: the report, and a warning when it failed part-way or
    not at all. The rollout's outcome stands either way."""

    report: PruneReport | None = None
    warning: str | None = None
