"""``lambdaserve import``: bring a model trained elsewhere into the store, then register it: a
bundle (the SageMaker training job's ``model.tar.gz``, a ``bundle.tar.gz`` or a bundle
directory, local or ``s3://``), or a scikit-learn model in the user's MLflow (``models:/...``,
``runs:/...``), written as a bundle first."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lambdaserve.cli.options import (
    CodeOption,
    HoldoutOption,
    JsonOption,
    PolicyOption,
    RegisterOption,
    StoreOption,
    TrustOption,
    serving_settings,
)
from lambdaserve.cli.registration import register_and_report
from lambdaserve.kernel.artifacts import ArtifactStore, StoredBundle
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.kernel.manifest import Manifest
from lambdaserve.kernel.model_trust import ModelTrust
from lambdaserve.registry.importing import import_bundle
from lambdaserve.registry.mlflow_import import ImportData, import_from_mlflow
from lambdaserve.registry.mlflow_tracking import is_mlflow_uri
from lambdaserve.views.console import err, fail, out
from lambdaserve.wiring import aws
from lambdaserve.wiring.local import open_local

TrackingUriOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking server to read models:/ and runs:/ sources from",
        envvar="MLFLOW_TRACKING_URI",
        show_envvar=True,
    ),
]
ReferenceOption = Annotated[
    Path | None,
    typer.Option(
        "--reference",
        help="MLflow sources: CSV of the rows the model was trained on (the drift baseline, "
        "the schema's ranges and categories)",
    ),
]
SampleOption = Annotated[
    Path | None,
    typer.Option(
        "--sample",
        help="MLflow sources without a signature: CSV of model inputs whose columns and types "
        "are the model's [default: the --reference columns]",
    ),
]
TargetOption = Annotated[
    str | None,
    typer.Option(
        "--target",
        help="MLflow sources: the target column of --reference (and --holdout: holdout metrics)",
    ),
]
NameOption = Annotated[
    str | None,
    typer.Option("--name", help="MLflow sources: model name [default: the registered model's]"),
]
AllowPickleOption = Annotated[
    bool,
    typer.Option(
        "--allow-pickle",
        help="MLflow sources: load a pickle or cloudpickle model file (it runs code when "
        "loaded; the bundle is written with skops)",
    ),
]


def import_(
    source: Annotated[
        str,
        typer.Argument(
            help="The training job's model.tar.gz, a bundle.tar.gz or a bundle directory (a "
            "local path or s3://bucket/key; boto3 credentials, AWS_ENDPOINT_URL is honoured), "
            "or an MLflow scikit-learn model: models:/NAME/VERSION, models:/NAME@ALIAS or "
            "runs:/RUN_ID/PATH"
        ),
    ],
    store: StoreOption = None,
    register: RegisterOption = True,
    holdout: HoldoutOption = None,
    gate: PolicyOption = None,
    code: CodeOption = None,
    trust: TrustOption = None,
    tracking_uri: TrackingUriOption = None,
    reference: ReferenceOption = None,
    sample: SampleOption = None,
    target: TargetOption = None,
    name: NameOption = None,
    allow_pickle: AllowPickleOption = False,
    as_json: JsonOption = False,
) -> None:
    """Verify and store a bundle trained elsewhere (e.g. by the SageMaker job), or write one from
    a scikit-learn model in your MLflow, then register it (the gate included)."""
    data = ImportData(reference, sample, holdout, target) if reference is not None else None
    try:
        model_trust = serving_settings(code, trust).model_trust()
        if is_mlflow_uri(source):
            stored, created = _import_mlflow(
                source, store, tracking_uri, data, name, allow_pickle, model_trust
            )
        else:
            if data is not None or sample or target or name or allow_pickle:
                fail(
                    "--reference, --sample, --target, --name and --allow-pickle apply to "
                    "models:/ and runs:/ sources only; a bundle carries its own"
                )
            local = open_local(store)
            stored, created = import_bundle(
                local.store, source, cache_dir=local.store.cache_dir, download=aws.download_bundle
            )
    except LambdaserveError as exc:
        fail(str(exc))
    if not created and not as_json:
        out.print(f"{stored.name} version {stored.version} was already stored (same digest)")
    warning = version_warning(stored.manifest)
    if warning:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    register_and_report(
        stored,
        store=store,
        register=register,
        holdout=holdout,
        gate=gate,
        as_json=as_json,
        trust=model_trust,
    )


def _import_mlflow(
    source: str,
    store: Path | None,
    tracking_uri: str | None,
    data: ImportData | None,
    name: str | None,
    allow_pickle: bool,
    trust: ModelTrust,
) -> tuple[StoredBundle, bool]:
    """Write the MLflow model as a bundle in a scratch directory, then store it like any other."""
    if not tracking_uri:
        fail(f"{source} needs a tracking server: set MLFLOW_TRACKING_URI or pass --tracking-uri")
    if data is None:
        fail(
            f"{source} needs --reference CSV: the rows the model was trained on (the drift "
            "baseline, the schema's ranges and categories)"
        )
    local = open_local(store)
    with tempfile.TemporaryDirectory(prefix="lambdaserve-import-") as scratch:
        bundle = import_from_mlflow(
            source,
            Path(scratch) / "bundle",
            tracking_uri=tracking_uri,
            data=data,
            name=name,
            allow_pickle=allow_pickle,
            trust=trust,
            next_version=local.store.next_version,
        )
        _refuse_registering_over_the_source(local.registry_uri, tracking_uri, bundle)
        earlier = _same_import(local.store, bundle)
        if earlier is not None:
            return earlier, False
        return import_bundle(local.store, str(bundle.path), cache_dir=local.store.cache_dir)


def _same_import(store: ArtifactStore, bundle: VerifiedBundle) -> StoredBundle | None:
    """A stored bundle of the same MLflow model version with the same data: importing it again
    changes nothing (as importing the same bundle file again does)."""
    new = bundle.manifest
    if new.source is None or new.name not in store.models():
        return None
    origin = new.source.model_copy(update={"uri": None})  # @alias or /N: the same version
    for stored in store.versions(new.name):
        old = stored.manifest
        same = old.source is not None and old.source.model_copy(update={"uri": None}) == origin
        if same and old.data.fingerprint == new.data.fingerprint:
            return stored
    return None


def version_warning(manifest: Manifest) -> str | None:
    """Say so when the model was saved with another scikit-learn than the one serving it: skops
    loads it, but estimators may answer differently across versions."""
    source = manifest.source
    serving = manifest.library_versions.get("scikit-learn")
    if source is None or not source.library_version or source.library_version == serving:
        return None
    return (
        f"{manifest.name} was saved with scikit-learn {source.library_version} and is served "
        f"with {serving}: check its answers on your holdout (--holdout scores it with {serving})"
    )


def _refuse_registering_over_the_source(
    registry_uri: str, tracking_uri: str, bundle: VerifiedBundle
) -> None:
    """lambdaserve's registry (LAMBDASERVE_REGISTRY_URI) may be the very server the model comes
    from: a lambdaserve version under the same name would land among the user's own versions."""
    source = bundle.manifest.source
    if registry_uri == tracking_uri and source and source.model_name == bundle.manifest.name:
        fail(
            f"lambdaserve's registry is {tracking_uri}, the server {source.model_name!r} comes "
            "from: registering the bundle under the same name would add a lambdaserve version "
            "to your own model; pass --name with another name"
        )
