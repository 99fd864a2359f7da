"""Register a stored bundle in the local registry and run the gate, for ``train``, ``import``
and ``models register``, and print what the registry answered."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from lambdaserve.kernel.artifacts import StoredBundle
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.kernel.model_trust import NO_TRUST, ModelTrust
from lambdaserve.registry.code_version import code_version
from lambdaserve.registry.holdout_scoring import Holdout
from lambdaserve.registry.promotion_gate import GatePolicy
from lambdaserve.registry.registration import GatedRegistration, register_and_gate
from lambdaserve.views.console import fail, out
from lambdaserve.views.training import print_summary, summary
from lambdaserve.wiring.local import open_local


def load_policy(path: Path | None) -> GatePolicy:
    if path is None:
        return GatePolicy()
    try:
        return GatePolicy.model_validate_json(path.read_text())
    except (OSError, ValueError) as exc:
        fail(f"invalid gate policy {path}: {exc}")


def register_locally(
    store: Path | None,
    name: str,
    bundle_version: str | None,
    *,
    holdout: Path | None,
    policy: GatePolicy,
    force: bool,
    trust: ModelTrust = NO_TRUST,
) -> GatedRegistration:
    """The local store and registry's ``register_and_gate`` (registry.registration)."""
    local = open_local(store)
    return register_and_gate(
        local.registry,
        local.store,
        name,
        bundle_version,
        holdout=Holdout.read(holdout) if holdout else None,
        policy=policy,
        force=force,
        code_version=code_version(),
        trust=trust,
    )


def register_and_report(
    stored: StoredBundle,
    *,
    store: Path | None,
    register: bool,
    holdout: Path | None,
    gate: Path | None,
    as_json: bool,
    trust: ModelTrust = NO_TRUST,
) -> None:
    """Register a freshly stored bundle and run the gate (unless ``register`` is off), then print
    the bundle's summary and the registry's answer."""
    try:
        registration = (
            register_locally(
                store,
                stored.name,
                stored.version,
                holdout=holdout,
                policy=load_policy(gate),
                force=False,
                trust=trust,
            )
            if register
            else None
        )
    except LambdaserveError as exc:
        fail(str(exc))
    result = summary(stored)
    if registration is not None:
        decision = registration.decision
        result["registry"] = {
            "version": registration.version.version,
            "aliases": list(registration.version.aliases),
            "gate": decision.model_dump(mode="json") if decision else None,
            "refusal": registration.refusal,
        }
    if as_json:
        typer.echo(json.dumps(result))
        return
    print_summary(stored)
    if registration is not None:
        version, decision = registration.version, registration.decision
        aliases = f" ({', '.join(version.aliases)})" if version.aliases else ""
        out.print(
            f"  registered as {version.name} v{version.version}{aliases}; gate: "
            + ("; ".join(decision.reasons) if decision else str(registration.refusal)),
            highlight=False,
        )
