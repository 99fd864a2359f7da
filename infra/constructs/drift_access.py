"""What the drift job's role may do in S3: read an hour's captures, read the stage's model's
bundles, and read, list and create (never replace) its drift reports."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

CAPTURES_PREFIX = "captures/"
REPORTS_PREFIX = "drift-reports/"


def capture_statements(capture_bucket: s3.IBucket) -> list[iam.PolicyStatement]:
    return [
        # Captures: list an hour's partition, then read its objects.
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[capture_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{CAPTURES_PREFIX}*"]}},
        ),
        iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[capture_bucket.arn_for_objects(f"{CAPTURES_PREFIX}*")],
        ),
    ]


def artifact_statements(
    artifact_bucket: s3.IBucket, *, bundles: str, reports: str
) -> list[iam.PolicyStatement]:
    return [
        # Bundles (manifest, reference) at the version their URI pins.
        iam.PolicyStatement(
            actions=["s3:GetObject", "s3:GetObjectVersion"],
            resources=[artifact_bucket.arn_for_objects(f"{bundles}*")],
        ),
        # Earlier reports (persistence).
        iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[artifact_bucket.arn_for_objects(f"{reports}*")],
        ),
        # Create-only: S3 accepts the write only with If-None-Match (S3 user guide,
        # "Enforce conditional writes on Amazon S3 buckets"), so a report is never replaced.
        iam.PolicyStatement(
            actions=["s3:PutObject"],
            resources=[artifact_bucket.arn_for_objects(f"{reports}*")],
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
            conditions={"StringLike": {"s3:prefix": [f"{reports}*", f"{bundles}*"]}},
        ),
    ]
