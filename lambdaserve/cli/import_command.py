"""``lambdaserve import``: bring a bundle trained elsewhere (the SageMaker training job's
``model.tar.gz``, a ``bundle.tar.gz`` or a bundle directory) into the store, then register it."""

from __future__ import annotations

from typing import Annotated

import typer

from lambdaserve.cli.console import fail, out
from lambdaserve.cli.options import (
    HoldoutOption,
    JsonOption,
    PolicyOption,
    RegisterOption,
    StoreOption,
    open_store,
)
from lambdaserve.cli.train_command import register_and_report
from lambdaserve.core.artifacts import StoredBundle
from lambdaserve.core.errors import LambdaserveError, VersionExistsError
from lambdaserve.local.artifact_store import LocalArtifactStore
from lambdaserve.serving.model_loader import fetch_bundle


def import_bundle(store: LocalArtifactStore, source: str) -> tuple[StoredBundle, bool]:
    """Verify the bundle at ``source`` (a directory, a .tar.gz, or an ``s3://`` URI of one) and
    store it under its manifest's name and version. Importing the same bundle again changes
    nothing (``created`` is False); a different bundle under a stored name and version is refused.
    """
    bundle = fetch_bundle(source, cache_dir=store.cache_dir)  # verifies every hash
    try:
        return store.put(bundle.path), True
    except VersionExistsError:
        stored = store.get(bundle.manifest.name, bundle.manifest.version)
        if stored.digest != bundle.digest:
            raise VersionExistsError(
                f"{stored.name} version {stored.version} is already stored with another digest "
                f"({stored.digest[:12]}, this bundle {bundle.digest[:12]}); bundles are immutable"
            ) from None
        return stored, False


def import_(
    source: Annotated[
        str,
        typer.Argument(
            help="The training job's model.tar.gz, a bundle.tar.gz or a bundle directory: a "
            "local path or s3://bucket/key (boto3 credentials; AWS_ENDPOINT_URL is honoured)"
        ),
    ],
    store: StoreOption = None,
    register: RegisterOption = True,
    holdout: HoldoutOption = None,
    gate: PolicyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verify and store a bundle trained elsewhere (e.g. by the SageMaker job), then register it."""
    try:
        stored, created = import_bundle(open_store(store), source)
    except LambdaserveError as exc:
        fail(str(exc))
    if not created and not as_json:
        out.print(f"{stored.name} version {stored.version} was already stored (same digest)")
    register_and_report(
        stored, store=store, register=register, holdout=holdout, gate=gate, as_json=as_json
    )
