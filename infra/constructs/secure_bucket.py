"""An S3 bucket with the settings every lambdaserve bucket needs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


def secure_bucket(
    scope: Construct,
    construct_id: str,
    *,
    access_logs: s3.IBucket | None,
    access_logs_prefix: str | None = None,
    versioned: bool = True,
    noncurrent_days: int | None = None,
    expiration_days: int | None = None,
    encryption_key: kms.IKey | None = None,
) -> s3.Bucket:
    """Versioned, encrypted (SSE-S3, or SSE-KMS with ``encryption_key``), private, TLS-only and
    retained on stack deletion; objects expire after ``expiration_days`` when given."""
    lifecycle = (
        [
            s3.LifecycleRule(
                noncurrent_version_expiration=(
                    Duration.days(noncurrent_days) if noncurrent_days else None
                ),
                expiration=Duration.days(expiration_days) if expiration_days else None,
            )
        ]
        if noncurrent_days or expiration_days
        else None
    )
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
        encryption_key=encryption_key,
        bucket_key_enabled=True if encryption_key else None,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        versioned=versioned,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=access_logs_prefix,
        lifecycle_rules=lifecycle,
        removal_policy=RemovalPolicy.RETAIN,
    )
