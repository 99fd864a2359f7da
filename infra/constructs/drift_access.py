"""What the drift job's role may do in S3: read an hour's captures, read the stage's models'
bundles, and read, list and create (never replace) their drift reports."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

CAPTURES_PREFIX = "captures/"
REPORTS_PREFIX = "drift-reports/"


def capture_statements(capture_bucket: s3.IBucket, models: list[str]) -> list[iam.PolicyStatement]:
    """Captures of ``models``: list an hour's partition of a model's tree, then read its
    objects; and list ``captures/`` itself, which names the models (a run invoked without a
    model judges every model it finds there, and fails on a tree this role may not read;
    the schedules always name their model)."""
    trees = [f"{CAPTURES_PREFIX}model={model}/" for model in models]
    return [
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[capture_bucket.bucket_arn],
            conditions={
                "StringLike": {"s3:prefix": [CAPTURES_PREFIX, *(f"{tree}*" for tree in trees)]}
            },
        ),
        iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[capture_bucket.arn_for_objects(f"{tree}*") for tree in trees],
        ),
    ]


def artifact_statements(
    artifact_bucket: s3.IBucket, *, bundles: list[str], reports: list[str]
) -> list[iam.PolicyStatement]:
    """Reading ``bundles`` prefixes, and reading, listing and creating under ``reports``."""
    return [
        # Bundles (manifest, reference) at the version their URI pins.
        iam.PolicyStatement(
            actions=["s3:GetObject", "s3:GetObjectVersion"],
            resources=[artifact_bucket.arn_for_objects(f"{prefix}*") for prefix in bundles],
        ),
        # Earlier reports (persistence).
        iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[artifact_bucket.arn_for_objects(f"{prefix}*") for prefix in reports],
        ),
        # Create-only: S3 accepts the write only with If-None-Match (S3 user guide,
        # "Enforce conditional writes on Amazon S3 buckets"), so a report is never replaced.
        iam.PolicyStatement(
            actions=["s3:PutObject"],
            resources=[artifact_bucket.arn_for_objects(f"{prefix}*") for prefix in reports],
            conditions={"Null": {"s3:if-none-match": "false"}},
        ),
        # Listing only where the job lists: a model version's reports (persistence, and
        # whether this window's report exists: S3ReportFiles.exists lists the key rather
        # than HEAD it, because S3 answers a missing key's HEAD with 404 only to a caller
        # that may list the whole bucket), and a model's versions (S3ArtifactStore, when a
        # bundle is missing). A missing bundle is then a 403: the job fails either way.
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[artifact_bucket.bucket_arn],
            conditions={
                "StringLike": {"s3:prefix": [f"{prefix}*" for prefix in (*reports, *bundles)]}
            },
        ),
    ]
