"""The local function file behaves like Lambda versions and aliases under concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from lambdaserve.kernel.errors import (
    FunctionConflictError,
    FunctionError,
    FunctionVersionInUseError,
)
from lambdaserve.kernel.function_versions import AliasRouting, FunctionPublisher, PublishedVersion
from lambdaserve.local.function_versions import LocalFunctionVersions

pytestmark = pytest.mark.unit


def sha(n: int) -> str:
    return f"{n:064x}"


def uri(n: int) -> str:
    return f"file:///store/models/churn/{n}/bundle.tar.gz"


def publish(functions: LocalFunctionVersions, n: int) -> PublishedVersion:
    return functions.publish(bundle_uri=uri(n), bundle_sha256=sha(n), description=f"churn {n}")


def file_state(functions: LocalFunctionVersions) -> dict[str, Any]:
    """The file on disk, parsed: it must be valid JSON after every operation."""
    state = json.loads(functions.path.read_text())
    assert isinstance(state, dict)
    return state


@pytest.fixture
def functions(tmp_path: Path) -> LocalFunctionVersions:
    return LocalFunctionVersions(tmp_path)


@pytest.fixture
def routed(functions: LocalFunctionVersions) -> LocalFunctionVersions:
    """Two published versions and a ``live`` alias on version 1."""
    publish(functions, 1)
    publish(functions, 2)
    functions.create_alias("live", "1")
    return functions


def test_it_is_a_function_publisher(functions: LocalFunctionVersions) -> None:
    publisher: FunctionPublisher = functions
    assert publisher.versions() == []
    assert publisher.alias() is None
    assert publisher.find(sha(1)) is None
    assert functions.path == functions.path.parent.parent / "functions" / "predict.json"


def test_publish_numbers_versions_from_one_and_pins_each_bundle(
    functions: LocalFunctionVersions,
) -> None:
    revisions = set()
    for n in (1, 2, 3):
        published = publish(functions, n)
        assert published == PublishedVersion(str(n), uri(n), sha(n), f"churn {n}")
        state = file_state(functions)
        assert state["environment"]["MODEL_SHA256"] == sha(n)
        revisions.add(state["revision_id"])

    state = file_state(functions)
    assert [v["version"] for v in state["versions"]] == ["1", "2", "3"]
    assert [v["environment"] for v in state["versions"]] == [
        {"MODEL_URI": uri(n), "MODEL_SHA256": sha(n)} for n in (1, 2, 3)
    ]
    assert all(v["published_at"] for v in state["versions"])
    assert len(revisions) == 3, "every write changes the revision id"
    assert [v.function_version for v in functions.versions()] == ["1", "2", "3"]


def test_publishing_creates_no_alias(functions: LocalFunctionVersions) -> None:
    publish(functions, 1)

    assert functions.alias() is None
    assert file_state(functions)["aliases"] == {}


def test_find_and_publish_are_idempotent_by_bundle_digest(
    functions: LocalFunctionVersions,
) -> None:
    first = publish(functions, 1)
    publish(functions, 2)
    before = functions.path.read_bytes()

    assert functions.find(sha(1)) == first
    again = functions.publish(bundle_uri=uri(1), bundle_sha256=sha(1), description="again")

    assert again == first
    assert functions.path.read_bytes() == before, "nothing changed, nothing written"
    assert functions.find(sha(9)) is None
    assert functions.find("") is None


def test_concurrent_publishes_from_threads_lose_nothing(functions: LocalFunctionVersions) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        published = list(pool.map(partial(publish, functions), range(1, 25)))

    assert_all_published(functions, published, 24)


def test_concurrent_publishes_from_processes_lose_nothing(tmp_path: Path) -> None:
    functions = LocalFunctionVersions(tmp_path)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=4, mp_context=context) as pool:
        futures = [
            pool.submit(
                functions.publish, bundle_uri=uri(n), bundle_sha256=sha(n), description=f"p{n}"
            )
            for n in range(1, 13)
        ]
        published = [future.result() for future in futures]

    assert_all_published(functions, published, 12)


def assert_all_published(
    functions: LocalFunctionVersions, published: list[PublishedVersion], count: int
) -> None:
    numbers = sorted(int(p.function_version) for p in published)
    assert numbers == list(range(1, count + 1)), "distinct versions, no gaps"
    assert sorted(v.bundle_sha256 for v in functions.versions()) == [
        sha(n) for n in range(1, count + 1)
    ]
    assert {functions.find(p.bundle_sha256) for p in published} == set(published)
    assert len(file_state(functions)["versions"]) == count
    leftovers = [p.name for p in functions.path.parent.iterdir() if p.suffix == ".tmp"]
    assert leftovers == []


def test_create_alias_points_all_traffic_at_one_version(routed: LocalFunctionVersions) -> None:
    routing = routed.alias()

    assert routing is not None
    assert (routing.alias, routing.version, routing.additional) == ("live", "1", {})
    assert routing.revision_id
    assert routing.shares() == {"1": 1.0}
    assert file_state(routed)["aliases"]["live"]["version"] == "1"


def test_create_alias_refuses_an_existing_alias_or_unknown_version(
    routed: LocalFunctionVersions,
) -> None:
    before = routed.path.read_bytes()

    with pytest.raises(FunctionError, match="already has alias 'live'"):
        routed.create_alias("live", "2")
    with pytest.raises(FunctionError, match="version\\(s\\) 7 not published"):
        routed.create_alias("staging", "7")

    assert routed.path.read_bytes() == before


def test_update_alias_shifts_weight_and_changes_its_revision(
    routed: LocalFunctionVersions,
) -> None:
    live = routed.alias()
    assert live is not None

    shifted = routed.update_alias("live", "1", {"2": 0.1}, live.revision_id)

    assert shifted.revision_id not in ("", live.revision_id)
    assert routed.alias() == shifted == AliasRouting("live", "1", {"2": 0.1}, shifted.revision_id)
    assert shifted.shares() == pytest.approx({"1": 0.9, "2": 0.1})
    assert sum(shifted.shares().values()) == pytest.approx(1.0)
    promoted = routed.update_alias("live", "2", {}, shifted.revision_id)
    assert promoted.shares() == {"2": 1.0}


def test_update_alias_with_a_stale_revision_is_a_conflict_and_changes_nothing(
    routed: LocalFunctionVersions,
) -> None:
    live = routed.alias()
    assert live is not None
    routed.update_alias("live", "1", {"2": 0.1}, live.revision_id)  # someone else moved it
    before = routed.path.read_bytes()

    with pytest.raises(FunctionConflictError, match="changed by someone else") as raised:
        routed.update_alias("live", "2", {}, live.revision_id)

    assert "Read the alias again and retry" in str(raised.value)
    assert routed.path.read_bytes() == before


@pytest.mark.parametrize(
    ("version", "additional", "problem"),
    [
        ("3", {}, "version\\(s\\) 3 not published"),
        ("1", {"9": 0.1}, "version\\(s\\) 9 not published"),
        ("1", {"1": 0.1}, "cannot also be the additional version"),
        ("1", {"2": 1.5}, "within \\[0, 1\\]"),
        ("1", {"2": -0.1}, "within \\[0, 1\\]"),
        ("1", {"2": float("nan")}, "within \\[0, 1\\]"),
    ],
)
def test_update_alias_refuses_routing_lambda_would_refuse(
    routed: LocalFunctionVersions, version: str, additional: dict[str, float], problem: str
) -> None:
    live = routed.alias()
    assert live is not None
    before = routed.path.read_bytes()

    with pytest.raises(FunctionError, match=problem):
        routed.update_alias("live", version, additional, live.revision_id)

    assert routed.path.read_bytes() == before


def test_at_most_one_additional_version(routed: LocalFunctionVersions) -> None:
    publish(routed, 3)
    live = routed.alias()
    assert live is not None

    with pytest.raises(FunctionError, match="at most one additional version"):
        routed.update_alias("live", "1", {"2": 0.1, "3": 0.1}, live.revision_id)


def test_update_alias_needs_an_existing_alias(routed: LocalFunctionVersions) -> None:
    with pytest.raises(FunctionError, match="has no alias 'staging'; create it first") as raised:
        routed.update_alias("staging", "1", {}, "")

    assert not isinstance(raised.value, FunctionConflictError)


def test_functions_are_kept_apart_by_name(tmp_path: Path) -> None:
    predict = LocalFunctionVersions(tmp_path)
    other = LocalFunctionVersions(tmp_path, "predict-eu")
    publish(predict, 1)

    assert publish(other, 2).function_version == "1"
    assert [v.bundle_sha256 for v in predict.versions()] == [sha(1)]


def test_a_corrupt_file_is_named(functions: LocalFunctionVersions) -> None:
    functions.path.parent.mkdir(parents=True)
    functions.path.write_text("{not json")

    with pytest.raises(FunctionError, match=r"predict\.json is not a valid function file"):
        functions.versions()
    with pytest.raises(FunctionError, match="not a valid function file"):
        publish(functions, 1)


def test_delete_version_removes_its_record_only(routed: LocalFunctionVersions) -> None:
    publish(routed, 3)
    before = file_state(routed)

    routed.delete_version("2")

    state = file_state(routed)
    assert [v["version"] for v in state["versions"]] == ["1", "3"]
    assert state["aliases"] == before["aliases"]
    assert state["revision_id"] != before["revision_id"]
    assert routed.find(sha(2)) is None
    assert [v.function_version for v in routed.versions()] == ["1", "3"]


def test_delete_version_refuses_a_version_any_alias_points_at(
    routed: LocalFunctionVersions,
) -> None:
    live = routed.alias()
    assert live is not None
    routed.update_alias("live", "1", {"2": 0.0}, live.revision_id)  # weight 0 still references
    publish(routed, 3)
    routed.create_alias("staging", "3")
    before = routed.path.read_bytes()

    for version, alias in (("1", "live"), ("2", "live"), ("3", "staging")):
        with pytest.raises(FunctionVersionInUseError, match=f"alias\\(es\\) {alias} point at it"):
            routed.delete_version(version)

    assert routed.path.read_bytes() == before


def test_delete_version_refuses_latest_and_ignores_a_version_already_gone(
    routed: LocalFunctionVersions,
) -> None:
    before = routed.path.read_bytes()

    with pytest.raises(FunctionError, match="only published versions are deleted"):
        routed.delete_version("$LATEST")
    routed.delete_version("7")

    assert routed.path.read_bytes() == before, "nothing to delete, nothing written"


def test_a_deleted_version_number_is_never_published_again(
    functions: LocalFunctionVersions,
) -> None:
    for n in (1, 2, 3):
        publish(functions, n)
    functions.create_alias("live", "1")
    functions.delete_version("3")
    functions.delete_version("2")

    again = publish(functions, 3)

    assert again.function_version == "4", "Lambda never reuses a version number"
    assert file_state(functions)["last_version"] == 4
    assert [v.function_version for v in functions.versions()] == ["1", "4"]


def test_a_file_written_before_deletions_existed_still_reads(
    functions: LocalFunctionVersions,
) -> None:
    publish(functions, 1)
    state = file_state(functions)
    del state["last_version"]
    functions.path.write_text(json.dumps(state))

    assert publish(functions, 2).function_version == "2"
