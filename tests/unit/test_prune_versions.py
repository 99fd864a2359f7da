"""Pruning published function versions over the local function file and an in-memory registry:
what is kept and why, what goes, dry runs, races with the alias, and the registry's tags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from lambdaserve.kernel.errors import FunctionError, PruneError
from lambdaserve.kernel.function_versions import AliasRouting, PublishedVersion
from lambdaserve.local.function_versions import LocalFunctionVersions
from lambdaserve.registry.model_registry import (
    TAG_LAMBDA_FUNCTION,
    TAG_LAMBDA_VERSION,
    RegisteredVersion,
)
from lambdaserve.rollout.prune_report import (
    KeptVersion,
    PrunedVersion,
    PruneReport,
    SkippedVersion,
)
from lambdaserve.rollout.pruning import TAG_PRUNED_LAMBDA_VERSION, prune_versions
from lambdaserve.rollout.version_pruning import VersionPruning, prune_after_rollout
from tests.support.fakes import FakeAlias, FakeFunction, MemoryRegistry

pytestmark = pytest.mark.unit
FUNCTION = "predict"


def sha(n: int) -> str:
    return f"{n:064x}"


def uri(n: int) -> str:
    return f"file:///store/models/churn/{n}/bundle.tar.gz"


@dataclass
class World:
    functions: LocalFunctionVersions
    registry: MemoryRegistry

    def prune(self, keep: int = 1, *, dry_run: bool = False, registry: bool = True) -> PruneReport:
        return prune_versions(
            self.functions,
            self.registry if registry else None,
            "churn",
            keep,
            dry_run,
            function_name=FUNCTION,
        )

    def numbers(self) -> list[str]:
        return [v.function_version for v in self.functions.versions()]


@pytest.fixture
def world(tmp_path: Path) -> World:
    """Seven published versions, each serving registry version n; live sends 90% to 2 and 10%
    to 3; the champion is v4 and the challenger v5."""
    functions = LocalFunctionVersions(tmp_path, FUNCTION)
    for n in range(1, 8):
        functions.publish(bundle_uri=uri(n), bundle_sha256=sha(n), description=f"churn {n}")
    live = functions.create_alias("live", "2")
    functions.update_alias("live", "2", {"3": 0.1}, live.revision_id)
    tags = {TAG_LAMBDA_FUNCTION: FUNCTION}
    registry = MemoryRegistry(
        *(
            RegisteredVersion(
                "churn", str(n), uri(n), sha(n), tags={**tags, TAG_LAMBDA_VERSION: str(n)}
            )
            for n in range(1, 8)
        ),
        aliases={"champion": "4", "challenger": "5"},
    )
    return World(functions, registry)


def test_keep_one_deletes_only_what_nothing_keeps(world: World) -> None:
    report = world.prune(keep=1)

    assert report.deleted == (
        PrunedVersion(function_version="1", model_version="1"),
        PrunedVersion(function_version="6", model_version="6"),
    )
    assert report.kept == (
        KeptVersion(function_version="2", reasons=("routed",), model_version="2"),
        KeptVersion(function_version="3", reasons=("routed",), model_version="3"),
        KeptVersion(function_version="4", reasons=("champion",), model_version="4"),
        KeptVersion(function_version="5", reasons=("challenger",), model_version="5"),
        KeptVersion(function_version="7", reasons=("newest",), model_version="7"),
    )
    assert report.skipped == () and report.error is None
    assert world.numbers() == ["2", "3", "4", "5", "7"]


def test_a_deleted_version_is_no_longer_recorded_as_published(world: World) -> None:
    report = world.prune(keep=1)

    assert report.untagged == ("1", "6")
    for number in ("1", "6"):
        assert world.registry.get("churn", number).lambda_version is None
        assert world.registry.tags[number][TAG_PRUNED_LAMBDA_VERSION] == number
    assert world.registry.get("churn", "2").lambda_version == "2"


def test_a_dry_run_changes_nothing_and_reports_what_would_go(world: World) -> None:
    before = world.functions.path.read_bytes()
    tags = {k: dict(v) for k, v in world.registry.tags.items()}

    report = world.prune(keep=1, dry_run=True)

    assert report.dry_run
    assert [d.function_version for d in report.deleted] == ["1", "6"]
    assert report.untagged == ("1", "6")
    assert world.functions.path.read_bytes() == before
    assert world.registry.tags == tags


def test_a_routed_version_is_never_deleted_however_old(world: World) -> None:
    live = world.functions.alias()
    assert live is not None
    world.functions.update_alias("live", "1", {}, live.revision_id)
    world.registry.aliases.clear()

    report = world.prune(keep=1)

    assert [k.function_version for k in report.kept] == ["1", "7"]
    assert world.numbers() == ["1", "7"]


def test_keep_counts_the_newest_versions_by_number(world: World) -> None:
    world.registry.aliases.clear()

    report = world.prune(keep=3)

    assert world.numbers() == ["2", "3", "5", "6", "7"]
    reasons = {k.function_version: k.reasons for k in report.kept}
    assert reasons["5"] == ("newest",) and reasons["3"] == ("routed",)


def test_without_a_registry_only_routed_and_newest_keep(world: World) -> None:
    report = world.prune(keep=2, registry=False)

    assert world.numbers() == ["2", "3", "6", "7"]
    assert report.untagged == ()
    assert all(d.model_version is None for d in report.deleted)
    assert world.registry.get("churn", "1").lambda_version == "1", "no registry, no tags"


def test_the_champion_is_found_by_its_bundle_when_its_tag_names_another_function(
    world: World,
) -> None:
    world.registry.tags["4"] = {TAG_LAMBDA_FUNCTION: "predict-eu", TAG_LAMBDA_VERSION: "1"}

    report = world.prune(keep=1)

    assert "4" in world.numbers()
    assert world.registry.tags["4"][TAG_LAMBDA_VERSION] == "1", "another function's tag stays"
    assert "4" not in report.untagged


def test_tags_naming_a_version_deleted_before_are_cleared_too(world: World) -> None:
    world.functions.delete_version("6")  # by an earlier prune without registry access
    world.registry.tags["7"][TAG_LAMBDA_VERSION] = "8"  # published after the listing: left

    report = world.prune(keep=1)

    assert report.untagged == ("1", "6")
    assert world.registry.get("churn", "6").lambda_version is None
    assert world.registry.get("churn", "7").lambda_version == "8"


@dataclass
class Racing:
    """The local function, whose live alias someone moves right after pruning first read it."""

    inner: LocalFunctionVersions
    reads: int = 0

    def versions(self) -> list[PublishedVersion]:
        return self.inner.versions()

    def alias(self, name: str = "live") -> AliasRouting | None:
        self.reads += 1
        if self.reads == 2:
            current = self.inner.alias(name)
            assert current is not None
            self.inner.update_alias(name, current.version, {"1": 0.05}, current.revision_id)
        return self.inner.alias(name)

    def delete_version(self, version: str) -> None:
        self.inner.delete_version(version)


def test_a_version_the_alias_routes_by_the_time_of_deletion_is_skipped(world: World) -> None:
    racing = Racing(world.functions)

    report = prune_versions(racing, world.registry, "churn", 1, function_name=FUNCTION)  # type: ignore[arg-type]

    assert report.skipped == (
        SkippedVersion(function_version="1", reason="live routes it now (changed while pruning)"),
    )
    assert [d.function_version for d in report.deleted] == ["6"]
    assert world.numbers() == ["1", "2", "3", "4", "5", "7"]
    assert world.registry.get("churn", "1").lambda_version == "1"


def test_a_deletion_the_function_refuses_is_a_skip_not_a_failure(world: World) -> None:
    world.functions.create_alias("staging", "1")

    report = world.prune(keep=1)

    (skipped,) = report.skipped
    assert skipped.function_version == "1" and "staging" in skipped.reason
    assert report.error is None
    assert world.numbers() == ["1", "2", "3", "4", "5", "7"]


def test_a_failing_deletion_stops_and_reports_what_was_done(world: World) -> None:
    calls: list[str] = []
    delete = world.functions.delete_version

    def failing(version: str) -> None:
        calls.append(version)
        if version == "6":
            raise FunctionError("AccessDenied")
        delete(version)

    world.functions.delete_version = failing  # type: ignore[method-assign]

    report = world.prune(keep=1)

    assert [d.function_version for d in report.deleted] == ["1"]
    assert report.error == ("deleting version 6 failed, pruning stopped: AccessDenied")
    assert report.untagged == ("1",)
    assert world.registry.get("churn", "6").lambda_version == "6"


@pytest.mark.parametrize("keep", [0, -1])
def test_keep_must_be_at_least_one(world: World, keep: int) -> None:
    before = world.functions.path.read_bytes()

    with pytest.raises(PruneError, match="keep must be at least 1"):
        world.prune(keep=keep)

    assert world.functions.path.read_bytes() == before


def test_an_unpinned_bootstrap_version_goes_once_nothing_routes_it(tmp_path: Path) -> None:
    functions = LocalFunctionVersions(tmp_path, FUNCTION)
    functions.publish(bundle_uri="", bundle_sha256="", description="bootstrap")
    live = functions.create_alias("live", "1")
    for n in (2, 3):
        functions.publish(bundle_uri=uri(n), bundle_sha256=sha(n), description=f"churn {n}")
    prune_versions(functions, None, "churn", 1, function_name=FUNCTION)
    assert [v.function_version for v in functions.versions()] == ["1", "3"], "routed: kept"

    functions.update_alias("live", "3", {}, live.revision_id)
    prune_versions(functions, None, "churn", 1, function_name=FUNCTION)

    assert [v.function_version for v in functions.versions()] == ["3"]


def _pruning(function: FakeFunction, keep: int = 1) -> VersionPruning:
    return VersionPruning(function, "lambdaserve-dev-predict", keep)


@pytest.mark.parametrize("status", ["running", "holding", "aborted"])
def test_after_a_rollout_that_did_not_end_nothing_is_pruned(status: str) -> None:
    function = FakeFunction(FakeAlias(), numbers=["1", "2", "3"])

    assert prune_after_rollout(_pruning(function), "churn", status) is None
    assert prune_after_rollout(None, "churn", "promoted") is None
    assert function.deleted == []


@pytest.mark.parametrize("status", ["promoted", "rolled_back"])
def test_after_a_rollout_ended_old_versions_are_pruned(status: str) -> None:
    function = FakeFunction(FakeAlias(), numbers=["1", "2", "3", "4"])  # live: 1

    after = prune_after_rollout(_pruning(function), "churn", status)

    assert after is not None and after.warning is None and after.report is not None
    assert function.deleted == ["2", "3"]
    assert after.report.function_name == "lambdaserve-dev-predict"


def test_a_pruning_failure_after_a_rollout_is_a_warning() -> None:
    failing = FakeFunction(FakeAlias(), numbers=["1", "2", "3"], failure=FunctionError("denied"))

    stopped = prune_after_rollout(_pruning(failing), "churn", "promoted")
    refused = prune_after_rollout(_pruning(failing, keep=0), "churn", "promoted")

    assert stopped is not None and stopped.warning == (
        "pruning old versions of lambdaserve-dev-predict: deleting version 2 failed, pruning "
        "stopped: denied"
    )
    assert refused is not None and refused.report is None
    assert refused.warning is not None and "keep must be at least 1" in refused.warning
