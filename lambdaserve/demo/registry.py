"""The demo's registry chapter: register v1, gate it, make it champion and publish it; train a v2
challenger, gate it against the champion on a shared holdout and publish it; show the status."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from lambdaserve.datasets import churn
from lambdaserve.kernel.artifacts import ArtifactStore, StoredBundle
from lambdaserve.kernel.errors import PromotionRefusedError
from lambdaserve.kernel.function_versions import LIVE_ALIAS
from lambdaserve.registry.code_version import code_version
from lambdaserve.registry.holdout_scoring import Holdout
from lambdaserve.registry.model_registry import TAG_GATE_RESULT, ModelRegistry, RegisteredVersion
from lambdaserve.registry.promotion_gate import GatePolicy
from lambdaserve.registry.registration import (
    gate_challenger,
    promote_to_champion,
    register_bundle,
)
from lambdaserve.rollout.publishing import publish_model_version
from lambdaserve.rollout.status import Status, model_status
from lambdaserve.views.console import out
from lambdaserve.views.training import train_model
from lambdaserve.wiring.local import LocalBackend

FUNCTION = "predict"


@dataclass(frozen=True)
class RegistryChapter:
    champion: RegisteredVersion
    challenger: RegisteredVersion | None
    status: Status


def _register(
    registry: ModelRegistry, store: ArtifactStore, stored: StoredBundle, holdout: Holdout
) -> RegisteredVersion:
    version, created = register_bundle(
        registry, store, stored.name, stored.version, code_version=code_version()
    )
    out.print(
        f"registered {stored.name} bundle v{stored.version} as registry v{version.version}"
        + ("" if created else " (already registered)")
    )
    try:
        decision = gate_challenger(registry, store, version, policy=GatePolicy(), holdout=holdout)
        out.print(f"  gate passed → challenger: {'; '.join(decision.reasons)}", highlight=False)
    except PromotionRefusedError as exc:
        out.print(f"  [yellow]gate refused[/]: {exc}", highlight=False)
    return registry.get(version.name, version.version)


def run_registry_chapter(
    backend: LocalBackend, v1: StoredBundle, train_csv: Path, holdout_csv: Path
) -> RegistryChapter:
    store, registry, functions = backend.store, backend.registry, backend.functions(FUNCTION)
    holdout = Holdout.read(holdout_csv)
    first = _register(registry, store, v1, holdout)
    champion = promote_to_champion(registry, first.name, first.version)
    out.print(f"promoted {champion.name} v{champion.version} to champion")
    # The champion's publication is the first deployment: it creates the live alias.
    published = publish_model_version(
        registry, store, store, functions, champion.name, champion.version, function_name=FUNCTION
    ).published
    routing = functions.alias(LIVE_ALIAS)
    if routing is not None and routing.shares() != {published.function_version: 1.0}:
        # a rerun on a store a finished demo left: point live at the champion again
        functions.update_alias(LIVE_ALIAS, published.function_version, {}, routing.revision_id)
    out.print(
        f"published champion as function version {published.function_version}; "
        f"{LIVE_ALIAS} → 100% version {published.function_version}"
    )
    v2 = train_model(
        backend,
        train_csv,
        {
            "target": churn.TARGET,
            "drop": [churn.ID_COLUMN],
            "model_name": v1.name,
            "estimator": "logistic_regression",
        },
        progress=True,
    )
    out.print(
        f"trained {v2.name} bundle v{v2.version} (logistic regression, "
        f"ROC AUC {v2.manifest.metrics['roc_auc']:.4f})"
    )
    second = _register(registry, store, v2, holdout)
    challenger = None
    if "challenger" in second.aliases:
        challenger_pub = publish_model_version(
            registry, store, store, functions, second.name, second.version, function_name=FUNCTION
        ).published
        out.print(f"published challenger as function version {challenger_pub.function_version}")
        challenger = registry.get(second.name, second.version)
    status = model_status(registry, functions, v1.name)
    out.print(status_table(status, registry))
    return RegistryChapter(
        champion=registry.get(champion.name, champion.version), challenger=challenger, status=status
    )


def status_table(status: Status, registry: ModelRegistry) -> Table:
    table = Table(title=f"registry and {LIVE_ALIAS} alias: {status.name}")
    for column in (
        "registry version",
        "aliases",
        "bundle",
        "function version",
        "live share",
        "roc_auc",
        "gate",
    ):
        table.add_column(column)
    shares = {route.function_version: route.share for route in status.routes}
    for version in registry.versions(status.name)[-4:]:
        table.add_row(
            version.version,
            ", ".join(version.aliases),
            version.bundle_version,
            version.lambda_version or "-",
            f"{shares.get(version.lambda_version or '', 0.0):.0%}",
            f"{version.metrics.get('roc_auc', float('nan')):.4f}",
            version.tags.get(TAG_GATE_RESULT, "-"),
        )
    return table
