"""The publish use case, called directly over the local adapters (the store, the function file,
MLflow on SQLite): what ``lambdaserve publish`` and the demo build on. The CLI over the AWS
backend is ``test_publish_workflow.py``."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from lambdaserve.datasets import churn
from lambdaserve.kernel.artifacts import StoredBundle, path_from_uri
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.errors import (
    ArtifactStoreError,
    BundleIntegrityError,
    LambdaserveError,
    ModelNotFoundError,
)
from lambdaserve.kernel.function_versions import LIVE_ALIAS, AliasRouting, PublishedVersion
from lambdaserve.local.artifact_store import LocalArtifactStore
from lambdaserve.local.function_versions import MODEL_SHA256, MODEL_URI, LocalFunctionVersions
from lambdaserve.registry.mlflow_registry import MlflowRegistry
from lambdaserve.registry.model_registry import (
    TAG_LAMBDA_FUNCTION,
    TAG_LAMBDA_VERSION,
    RegisteredVersion,
)
from lambdaserve.registry.registration import promote_to_champion, register_bundle
from lambdaserve.rollout.publishing import (
    TAG_FIRST_DEPLOYMENT,
    Publication,
    deploy_hint,
    publish_model_version,
    serves_a_model,
)
from tests.support.bundles import train_bundle

pytestmark = pytest.mark.integration

FUNCTION = "predict"


def _tiny_bundle(root: Path, *, version: str, seed: int) -> VerifiedBundle:
    """Another churn bundle, trained in a blink (few rows and trees, no ONNX)."""
    return train_bundle(
        root,
        churn.generate_churn(300, seed=seed),
        target=churn.TARGET,
        drop=[churn.ID_COLUMN],
        model_name="churn",
        model_version=version,
        n_estimators=5,
        cv_folds=2,
        onnx=False,
    )


@pytest.fixture(scope="module")
def second_bundle(tmp_path_factory: pytest.TempPathFactory) -> VerifiedBundle:
    """churn bundle version 2."""
    return _tiny_bundle(tmp_path_factory.mktemp("second"), version="2", seed=21)


@pytest.fixture(scope="module")
def rival_bundle(tmp_path_factory: pytest.TempPathFactory) -> VerifiedBundle:
    """Another bundle that also calls itself churn version 1."""
    return _tiny_bundle(tmp_path_factory.mktemp("rival"), version="1", seed=22)


@pytest.fixture(scope="module")
def empty_registry_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite database with its tables created once: each test starts from a copy
    instead of running MLflow's migrations again."""
    root = tmp_path_factory.mktemp("registry-template")
    assert MlflowRegistry.for_store(root).models() == []
    return root / "registry" / "mlflow.db"


@dataclass(frozen=True)
class World:
    root: Path
    store: LocalArtifactStore
    registry: MlflowRegistry
    functions: LocalFunctionVersions
    stored: StoredBundle
    model: RegisteredVersion

    def publish(self, version: str, *, target: LocalArtifactStore | None = None) -> Publication:
        return publish_model_version(
            self.registry,
            self.store,
            self.store if target is None else target,
            self.functions,
            "churn",
            version,
            function_name=FUNCTION,
        )

    def register(self, bundle: VerifiedBundle) -> RegisteredVersion:
        stored = self.store.put(bundle.path)
        registered, _ = register_bundle(
            self.registry, self.store, stored.name, stored.version, code_version="test"
        )
        return registered


@pytest.fixture
def world(tmp_path: Path, churn_bundle: VerifiedBundle, empty_registry_db: Path) -> World:
    """A store holding churn bundle 1, registered as registry version 1; no function yet."""
    root = tmp_path / "store"
    (root / "registry").mkdir(parents=True)
    shutil.copyfile(empty_registry_db, root / "registry" / "mlflow.db")
    store = LocalArtifactStore(root)
    stored = store.put(churn_bundle.path)
    registry = MlflowRegistry.for_store(root)
    model, created = register_bundle(registry, store, "churn", "1", code_version="test")
    assert created and model.version == "1"
    return World(
        root=store.root,
        store=store,
        registry=registry,
        functions=LocalFunctionVersions(store.root, FUNCTION),
        stored=stored,
        model=model,
    )


def _function_file(world: World) -> dict[str, object]:
    return json.loads(world.functions.path.read_text())  # type: ignore[no-any-return]


def test_publishing_pins_a_function_version_to_the_bundle_and_records_it(
    world: World, churn_bundle: VerifiedBundle
) -> None:
    publication = world.publish("1")

    assert publication.created
    digest = churn_bundle.digest
    assert world.model.bundle_sha256 == digest == world.stored.digest
    expected = PublishedVersion(
        function_version="1",
        bundle_uri=world.stored.uri,
        bundle_sha256=digest,
        description=f"churn v1 bundle 1 sha256 {digest[:16]}",
    )
    assert publication.published == expected
    assert world.functions.versions() == [expected]
    assert world.functions.find(digest) == expected
    state = _function_file(world)
    pinned = {MODEL_URI: world.stored.uri, MODEL_SHA256: digest}
    (record,) = state["versions"]  # type: ignore[misc]
    assert record["version"] == "1" and record["environment"] == pinned
    assert state["environment"] == pinned  # the function itself points at the bundle too
    assert world.stored.uri.endswith("/models/churn/1/bundle.tar.gz")

    recorded = world.registry.get("churn", "1")
    assert recorded.lambda_version == "1"
    assert recorded.tags[TAG_LAMBDA_VERSION] == "1"
    assert recorded.tags[TAG_LAMBDA_FUNCTION] == FUNCTION
    assert recorded.tags["published_bundle_uri"] == world.stored.uri
    assert publication.model == recorded


def test_publishing_a_version_that_is_not_champion_does_not_deploy_it(world: World) -> None:
    publication = world.publish("1")
    assert publication.deployed is None
    assert world.functions.alias(LIVE_ALIAS) is None  # publishing never creates an alias
    assert publication.undeployed is not None
    assert "live serves no model yet" in publication.undeployed
    assert "`lambdaserve models promote churn:VERSION`" in publication.undeployed
    assert TAG_FIRST_DEPLOYMENT not in world.registry.get("churn", "1").tags


def test_publishing_the_same_version_again_changes_nothing(world: World) -> None:
    first = world.publish("1")
    file_before = world.functions.path.read_bytes()
    tags_before = world.registry.get("churn", "1").tags

    again = world.publish("1")

    assert not again.created
    assert again.published == first.published
    assert [v.function_version for v in world.functions.versions()] == ["1"]
    assert world.functions.path.read_bytes() == file_before
    assert world.registry.get("churn", "1").tags == tags_before
    assert world.store.versions("churn") == [world.stored]


def test_the_champions_first_publication_creates_live_and_later_ones_leave_it(
    world: World, second_bundle: VerifiedBundle
) -> None:
    promote_to_champion(world.registry, "churn", "1")

    first = world.publish("1")

    live = world.functions.alias(LIVE_ALIAS)
    assert live is not None and live.version == "1" and live.shares() == {"1": 1.0}
    assert first.deployed == live
    assert first.undeployed is None
    assert first.model.tags[TAG_FIRST_DEPLOYMENT] == "live: no alias -> 1"
    assert world.registry.get("churn", "1").tags[TAG_FIRST_DEPLOYMENT] == "live: no alias -> 1"
    assert serves_a_model(world.functions.versions(), live)

    registered = world.register(second_bundle)
    assert registered.version == "2"
    second = world.publish("2")

    assert second.created and second.published.function_version == "2"
    assert second.published.bundle_sha256 == second_bundle.digest
    assert second.deployed is None and second.undeployed is None
    assert world.functions.alias(LIVE_ALIAS) == live  # same routing, same revision
    assert TAG_FIRST_DEPLOYMENT not in world.registry.get("churn", "2").tags
    assert world.registry.get("churn", "2").lambda_version == "2"
    assert [v.function_version for v in world.functions.versions()] == ["1", "2"]


def test_a_version_published_before_it_became_champion_is_deployed_by_publishing_it_again(
    world: World,
) -> None:
    assert world.publish("1").deployed is None
    promote_to_champion(world.registry, "churn", "1")

    again = world.publish("1")

    assert not again.created  # no new function version...
    assert [v.function_version for v in world.functions.versions()] == ["1"]
    assert again.deployed is not None and again.deployed.shares() == {"1": 1.0}  # ...but deployed
    assert world.functions.alias(LIVE_ALIAS) == again.deployed
    assert again.model.tags[TAG_FIRST_DEPLOYMENT] == "live: no alias -> 1"


def test_a_bundle_missing_from_the_target_store_is_uploaded_before_it_is_pinned(
    world: World, tmp_path: Path
) -> None:
    bucket = LocalArtifactStore(tmp_path / "bucket")

    publication = world.publish("1", target=bucket)

    uploaded = bucket.get("churn", "1")
    assert uploaded.digest == world.model.bundle_sha256
    assert publication.published.bundle_uri == uploaded.uri != world.stored.uri
    assert world.registry.get("churn", "1").tags["published_bundle_uri"] == uploaded.uri
    assert not world.publish("1", target=bucket).created
    assert bucket.versions("churn") == [uploaded]


def test_a_target_store_holding_another_bundle_under_that_version_is_refused(
    world: World, tmp_path: Path, rival_bundle: VerifiedBundle
) -> None:
    bucket = LocalArtifactStore(tmp_path / "bucket")
    rival = bucket.put(rival_bundle.path)  # also churn version 1, another bundle
    assert rival.digest != world.model.bundle_sha256
    versions_before = world.registry.versions("churn")

    with pytest.raises(BundleIntegrityError) as refused:
        world.publish("1", target=bucket)

    assert str(refused.value) == (
        f"{rival.uri} already holds a different bundle for churn version 1; nothing was published"
    )
    assert world.functions.versions() == []
    assert not world.functions.path.exists()
    assert world.registry.versions("churn") == versions_before
    assert bucket.versions("churn") == [rival]


def test_an_unregistered_version_is_refused_and_nothing_changes(
    world: World, second_bundle: VerifiedBundle
) -> None:
    world.store.put(second_bundle.path)  # stored as bundle 2, never registered
    versions_before = world.registry.versions("churn")

    with pytest.raises(ModelNotFoundError) as refused:
        world.publish("2")

    assert isinstance(refused.value, LambdaserveError)
    said = str(refused.value)
    assert said.startswith("churn v2 is not in the registry (registered versions: 1)")
    assert "`lambdaserve register churn:BUNDLE_VERSION`" in said
    assert world.functions.versions() == []
    assert not world.functions.path.exists()
    assert world.registry.versions("churn") == versions_before
    assert world.registry.models() == ["churn"]


def test_an_unknown_model_is_refused_with_no_versions_to_offer(world: World) -> None:
    with pytest.raises(ModelNotFoundError, match=r"^other v1 is not in the registry \(registered "):
        publish_model_version(
            world.registry,
            world.store,
            world.store,
            world.functions,
            "other",
            "1",
            function_name=FUNCTION,
        )
    assert world.functions.versions() == []
    assert world.registry.models() == ["churn"]


def test_a_registered_version_whose_bundle_is_gone_is_refused_and_nothing_changes(
    world: World,
) -> None:
    shutil.rmtree(world.root / "models" / "churn" / "1")
    versions_before = world.registry.versions("churn")

    with pytest.raises(ArtifactStoreError) as refused:
        world.publish("1")

    assert isinstance(refused.value, ModelNotFoundError)
    assert str(refused.value) == f"model churn version 1 is not in {world.root}"
    assert world.functions.versions() == []
    assert not world.functions.path.exists()
    assert world.registry.versions("churn") == versions_before
    assert world.registry.get("churn", "1").lambda_version is None


def test_a_bundle_archive_replaced_after_registration_is_refused_unopened(
    world: World, tmp_path: Path, rival_bundle: VerifiedBundle
) -> None:
    other = LocalArtifactStore(tmp_path / "other").put(rival_bundle.path)
    archive = world.root / "models" / "churn" / "1" / "bundle.tar.gz"
    shutil.copyfile(path_from_uri(other.uri), archive)
    shutil.rmtree(world.store.cache_dir, ignore_errors=True)
    versions_before = world.registry.versions("churn")

    with pytest.raises(BundleIntegrityError, match="it was replaced after registration"):
        world.publish("1")

    assert world.functions.versions() == []
    assert world.registry.versions("churn") == versions_before


# -- what serves a model, and what deploys one -----------------------------------------------

BOOTSTRAP = PublishedVersion(function_version="1", bundle_uri="", bundle_sha256="", description="")
PINNED = PublishedVersion(
    function_version="2", bundle_uri="file:///b.tar.gz", bundle_sha256="ab" * 32, description=""
)


@pytest.mark.parametrize(
    ("routing", "serves"),
    [
        (None, False),
        (AliasRouting(alias=LIVE_ALIAS, version="1"), False),  # the bootstrap version pins none
        (AliasRouting(alias=LIVE_ALIAS, version="2"), True),
        (AliasRouting(alias=LIVE_ALIAS, version="1", additional={"2": 0.25}), True),
        (AliasRouting(alias=LIVE_ALIAS, version="2", additional={"1": 0.5}), True),
        (AliasRouting(alias=LIVE_ALIAS, version="3"), False),  # not one of the versions given
        # A pinned version the alias names at weight 0 gets no traffic: nothing serves a model,
        # so the champion's first publication must still deploy it.
        (AliasRouting(alias=LIVE_ALIAS, version="1", additional={"2": 0.0}), False),
        (AliasRouting(alias=LIVE_ALIAS, version="2", additional={"1": 1.0}), False),
    ],
)
def test_serves_a_model_only_when_live_routes_to_a_pinned_version(
    routing: AliasRouting | None, serves: bool
) -> None:
    assert serves_a_model([BOOTSTRAP, PINNED], routing) is serves


def test_serves_a_model_with_no_versions_is_false() -> None:
    assert not serves_a_model([], AliasRouting(alias=LIVE_ALIAS, version="2"))


def test_deploy_hint_says_what_to_run() -> None:
    assert deploy_hint("churn", None) == (
        "promote a champion (lambdaserve models promote churn:VERSION) and publish it"
    )
    assert deploy_hint("churn", "3") == (
        "publishing the champion deploys it (lambdaserve publish churn:3)"
    )
