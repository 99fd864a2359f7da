"""Wire the adapters for a backend: local (the embedded default) or AWS."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from lambdaserve.core.artifacts import ArtifactStore
from lambdaserve.core.functions import FunctionPublisher
from lambdaserve.core.registry import ModelRegistry
from lambdaserve.local.artifact_store import LocalArtifactStore, default_store_root

FUNCTION_ENV = "LAMBDASERVE_FUNCTION"
BUCKET_ENV = "LAMBDASERVE_ARTIFACT_BUCKET"
DEFAULT_FUNCTION = "predict"


class Backend(StrEnum):
    local = "local"
    aws = "aws"


BackendOption = Annotated[
    Backend, typer.Option("--backend", help="local (embedded default) or aws")
]
FunctionOption = Annotated[
    str | None,
    typer.Option("--function", help=f"Lambda function name [default: ${FUNCTION_ENV}]"),
]
BucketOption = Annotated[
    str | None,
    typer.Option("--bucket", help=f"s3://bucket for bundles on AWS [default: ${BUCKET_ENV}]"),
]


@dataclass(frozen=True)
class Backends:
    store: LocalArtifactStore
    registry: ModelRegistry
    target_store: ArtifactStore
    publisher: FunctionPublisher
    function_name: str


def open_registry(store_root: Path) -> ModelRegistry:
    from lambdaserve.registry.mlflow_registry import MlflowRegistry

    return MlflowRegistry.for_store(store_root)


def open_backends(
    store: Path | None, backend: Backend, *, function: str | None = None, bucket: str | None = None
) -> Backends:
    local = LocalArtifactStore(store or default_store_root())
    registry = open_registry(local.root)
    if backend is Backend.local:
        from lambdaserve.local.function_versions import LocalFunctionVersions

        local_name = function or DEFAULT_FUNCTION
        return Backends(
            local, registry, local, LocalFunctionVersions(local.root, local_name), local_name
        )
    from lambdaserve.aws.s3_artifact_store import S3ArtifactStore

    name = function or os.environ.get(FUNCTION_ENV)
    uri = bucket or os.environ.get(BUCKET_ENV)
    if not name or not uri:
        raise typer.BadParameter(
            f"--backend aws needs --function (or ${FUNCTION_ENV}) and --bucket (or ${BUCKET_ENV})"
        )
    bucket_uri = uri if uri.startswith("s3://") else f"s3://{uri}"
    return Backends(
        local, registry, S3ArtifactStore.from_uri(bucket_uri), _aws_publisher(name), name
    )


@dataclass(frozen=True)
class FunctionBackend:
    """What reads a deployed function needs: the registry and the function, no bundle bucket."""

    registry: ModelRegistry
    publisher: FunctionPublisher
    function_name: str


def open_function(
    store: Path | None, backend: Backend, *, function: str | None = None
) -> FunctionBackend:
    local = LocalArtifactStore(store or default_store_root())
    registry = open_registry(local.root)
    if backend is Backend.local:
        from lambdaserve.local.function_versions import LocalFunctionVersions

        local_name = function or DEFAULT_FUNCTION
        return FunctionBackend(registry, LocalFunctionVersions(local.root, local_name), local_name)
    name = function or os.environ.get(FUNCTION_ENV)
    if not name:
        raise typer.BadParameter(f"--backend aws needs --function (or ${FUNCTION_ENV})")
    return FunctionBackend(registry, _aws_publisher(name), name)


def _aws_publisher(function_name: str) -> FunctionPublisher:
    from lambdaserve.aws.lambda_publisher import LambdaPublisher

    return LambdaPublisher(function_name)
