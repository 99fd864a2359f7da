"""``lambdaserve import``: bring a bundle trained elsewhere (the SageMaker training job's
``model.tar.gz``, a ``bundle.tar.gz`` or a bundle directory) into the store, then register it."""

from __future__ import annotations

from typing import Annotated

import typer

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
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.registry.importing import import_bundle
from lambdaserve.views.console import fail, out
from lambdaserve.wiring import aws
from lambdaserve.wiring.local import open_local


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
    code: CodeOption = None,
    trust: TrustOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verify and store a bundle trained elsewhere (e.g. by the SageMaker job), then register it."""
    try:
        model_trust = serving_settings(code, trust).model_trust()
        local = open_local(store)
        stored, created = import_bundle(
            local.store, source, cache_dir=local.store.cache_dir, download=aws.download_bundle
        )
    except LambdaserveError as exc:
        fail(str(exc))
    if not created and not as_json:
        out.print(f"{stored.name} version {stored.version} was already stored (same digest)")
    register_and_report(
        stored,
        store=store,
        register=register,
        holdout=holdout,
        gate=gate,
        as_json=as_json,
        trust=model_trust,
    )
