"""The AWS backend as the CLI drives it: bundles in S3, the predict function's versions and live
alias through the Lambda API, its CloudWatch guard alarms, the durable rollout state in S3.

The registry stays the local MLflow one (the CLI's machine registers; the stacks serve). The
Lambda functions assemble their own adapters in ``aws_predict``, ``aws_rollout``, ``aws_drift``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from lambdaserve.aws.rollout_machine import check_state_machine, start_unattended
from lambdaserve.aws.s3_bundle_source import download_bundle
from lambdaserve.kernel.artifacts import ArtifactStore
from lambdaserve.kernel.capture import CaptureRecord, FeedbackRecord
from lambdaserve.kernel.function_versions import FunctionPublisher
from lambdaserve.registry.model_registry import ModelRegistry
from lambdaserve.rollout.use_cases import RolloutContext

__all__ = [
    "artifact_store",
    "capture_stream",
    "check_state_machine",
    "download_bundle",
    "publisher",
    "rollout_context",
    "stage_function",
    "start_unattended",
]


def artifact_store(bucket: str) -> ArtifactStore:
    """Bundles under ``s3://bucket/models/`` (``bucket`` with or without the scheme)."""
    from lambdaserve.aws.s3_artifact_store import S3ArtifactStore

    return S3ArtifactStore.from_uri(bucket if bucket.startswith("s3://") else f"s3://{bucket}")


def stage_function(stage: str, model: str) -> str:
    """The deployed predict function of ``model`` in ``stage`` (by the stack's names and tags)."""
    from lambdaserve.aws.stage_functions import stage_function as find

    return find(stage, model)


def publisher(function_name: str) -> FunctionPublisher:
    from lambdaserve.aws.lambda_publisher import LambdaPublisher

    return LambdaPublisher(function_name)


def rollout_context(registry: ModelRegistry, function_name: str, bucket: str) -> RolloutContext:
    """The live alias of a deployed function, its alarms as the guard and the state in S3, on
    S3's clock (the rollout Lambda measures holds on the same one)."""
    from lambdaserve.aws.cloudwatch_guard import CloudWatchGuard
    from lambdaserve.aws.lambda_alias import LambdaAlias
    from lambdaserve.aws.s3_rollout_state import S3RolloutState

    alias = LambdaAlias(function_name)
    states = S3RolloutState(artifact_bucket_name(bucket))
    return RolloutContext(
        registry=registry,
        alias=alias,
        guard=CloudWatchGuard(function_name),
        states=states,
        function_name=function_name,
        published=alias.published_versions,
        clock=states.now,
        publisher=publisher(function_name),
    )


def artifact_bucket_name(bucket: str) -> str:
    return bucket.removeprefix("s3://").split("/", 1)[0]


def capture_stream(
    bucket: str, start: datetime, end: datetime, *, model: str | None = None
) -> Iterator[CaptureRecord | FeedbackRecord]:
    """Capture and feedback records of [start, end) from the stage's capture bucket: of
    ``model``'s partitions only, or of every model's (None)."""
    from lambdaserve.aws.s3_drift_io import S3CaptureReader

    return S3CaptureReader(bucket, model=model).stream(start, end)
