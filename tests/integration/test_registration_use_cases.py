"""The register-and-gate and import use cases (registry), called directly with a local store
and MLflow on SQLite: what the CLI's ``train``, ``register`` and ``import`` build on."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.local.artifact_store import LocalArtifactStore
from lambdaserve.registry.importing import import_bundle
from lambdaserve.registry.mlflow_registry import MlflowRegistry
from lambdaserve.registry.model_registry import CHALLENGER, TAG_GATE_RESULT
from lambdaserve.registry.promotion_gate import GatePolicy
from lambdaserve.registry.registration import (
    GatedRegistration,
    promote_to_champion,
    register_and_gate,
)

pytestmark = pytest.mark.integration


def _model_tar(bundle: VerifiedBundle, path: Path) -> Path:
    """The bundle as SageMaker uploads /opt/ml/model: a tar.gz of the directory."""
    with tarfile.open(path, "w:gz") as tar:
        tar.add(bundle.path, arcname=".")
    return path


def test_import_verifies_stores_and_is_idempotent(
    churn_bundle: VerifiedBundle, churn_hgb_bundle: VerifiedBundle, tmp_path: Path
) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    archive = _model_tar(churn_bundle, tmp_path / "model.tar.gz")
    stored, created = import_bundle(store, str(archive), cache_dir=store.cache_dir)
    assert created and (stored.name, stored.version) == ("churn", "1")
    assert stored.digest == churn_bundle.digest
    again, created_again = import_bundle(store, str(archive), cache_dir=store.cache_dir)
    assert not created_again and again == stored
    other, _ = import_bundle(store, str(churn_hgb_bundle.path), cache_dir=store.cache_dir)
    assert other.version == "2" and [v.version for v in store.versions("churn")] == ["1", "2"]


def test_register_and_gate_crowns_a_first_challenger_and_refuses_an_unfair_comparison(
    churn_bundle: VerifiedBundle, churn_hgb_bundle: VerifiedBundle, tmp_path: Path
) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    registry = MlflowRegistry.for_store(store.root)
    for bundle in (churn_bundle, churn_hgb_bundle):
        store.put(bundle.path)

    def gate(version: str, *, force: bool = False) -> GatedRegistration:
        return register_and_gate(
            registry, store, "churn", version, holdout=None, policy=GatePolicy(), force=force,
            code_version="test",
        )  # fmt: skip

    first = gate("1")
    assert first.created and first.refusal is None
    assert first.decision is not None and first.decision.passed
    assert CHALLENGER in first.version.aliases
    assert not gate("1").created  # registering again changes nothing
    promote_to_champion(registry, "churn", first.version.version)

    # With a champion, two models are compared on one holdout only: refused, not an error.
    second = gate("2")
    assert second.created and second.decision is None
    assert second.refusal is not None and "--holdout" in second.refusal
    assert CHALLENGER not in second.version.aliases

    forced = gate("2", force=True)  # recorded as forced
    assert forced.decision is not None and forced.decision.accepted and forced.decision.forced
    assert CHALLENGER in forced.version.aliases
    assert forced.version.tags[TAG_GATE_RESULT]
