"""The ``--backend`` options and what they open, from the composition root (``wiring``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from lambdaserve.kernel.artifacts import ArtifactStore
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.kernel.function_versions import FunctionPublisher
from lambdaserve.registry.model_registry import ModelRegistry
from lambdaserve.rollout.use_cases import RolloutContext
from lambdaserve.wiring import aws
from lambdaserve.wiring.local import LocalBackend, open_local

FUNCTION_ENV = "LAMBDASERVE_FUNCTION"
BUCKET_ENV = "LAMBDASERVE_ARTIFACT_BUCKET"
#: With it, ``--backend aws`` finds a model's function in that deployed stage by its name.
STAGE_ENV = "LAMBDASERVE_STAGE"


class Backend(StrEnum):
    local = "local"
    aws = "aws"


BackendOption = Annotated[
    Backend, typer.Option("--backend", help="local (embedded default) or aws")
]
FunctionOption = Annotated[
    str | None,
    typer.Option(
        "--function",
        help=f"Lambda function name [default: ${FUNCTION_ENV}, or the model's function in the "
        f"deployed stage ${STAGE_ENV}]",
    ),
]
BucketOption = Annotated[
    str | None,
    typer.Option("--bucket", help=f"s3://bucket for bundles on AWS [default: ${BUCKET_ENV}]"),
]


@dataclass(frozen=True)
class Backends:
    """The local store and registry, and where bundles are published: the local function, or
    the deployed one with its bundle ``bucket``."""

    local: LocalBackend
    target_store: ArtifactStore
    publisher: FunctionPublisher
    function_name: str
    bucket: str | None = None

    @property
    def store(self) -> ArtifactStore:
        return self.local.store

    @property
    def registry(self) -> ModelRegistry:
        return self.local.registry


def open_backends(
    store: Path | None,
    backend: Backend,
    *,
    function: str | None = None,
    bucket: str | None = None,
    model: str | None = None,
) -> Backends:
    """The local backend, and for ``--backend aws`` the deployed function and bundle bucket;
    locally the function is ``model``'s (``LocalBackend.function_for``) unless named."""
    local = open_local(store)
    local.registry  # noqa: B018  opened here, as every command needs it: its errors come first
    if backend is Backend.local:
        local_name = function or local.function_for(model)
        return Backends(local, local.store, local.functions(local_name), local_name)
    name = aws_function(function, model)
    uri = bucket or os.environ.get(BUCKET_ENV)
    if not name or not uri:
        raise typer.BadParameter(
            f"--backend aws needs --function (or ${FUNCTION_ENV}, or ${STAGE_ENV} with the "
            f"model's name) and --bucket (or ${BUCKET_ENV})"
        )
    return Backends(local, aws.artifact_store(uri), aws.publisher(name), name, uri)


def aws_function(function: str | None, model: str | None) -> str | None:
    """The deployed function a command acts on: named, from the environment, or the model's
    function in the stage ``$LAMBDASERVE_STAGE`` names (by the serving stack's names and tags)."""
    name = function or os.environ.get(FUNCTION_ENV)
    stage = os.environ.get(STAGE_ENV)
    if name or not (stage and model):
        return name
    try:
        return aws.stage_function(stage, model)
    except LambdaserveError as exc:
        raise typer.BadParameter(str(exc)) from exc


def open_rollout(
    store: Path | None,
    backend: Backend,
    function: str | None,
    bucket: str | None,
    model: str | None = None,
) -> RolloutContext:
    """What a rollout command drives: the live alias, its guard and the durable state."""
    wired = open_backends(store, backend, function=function, bucket=bucket, model=model)
    if wired.bucket is None:
        return wired.local.rollout_context(wired.function_name)
    return aws.rollout_context(wired.registry, wired.function_name, wired.bucket)


@dataclass(frozen=True)
class FunctionBackend:
    """What reads a deployed function needs: the registry and the function, no bundle bucket."""

    registry: ModelRegistry
    publisher: FunctionPublisher
    function_name: str


def open_function(
    store: Path | None, backend: Backend, *, function: str | None = None, model: str | None = None
) -> FunctionBackend:
    local = open_local(store)
    if backend is Backend.local:
        local_name = function or local.function_for(model)
        return FunctionBackend(local.registry, local.functions(local_name), local_name)
    name = aws_function(function, model)
    if not name:
        raise typer.BadParameter(
            f"--backend aws needs --function (or ${FUNCTION_ENV}, or ${STAGE_ENV} with the "
            "model's name)"
        )
    return FunctionBackend(local.registry, aws.publisher(name), name)
