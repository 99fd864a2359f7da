"""Stateful storage, retained on deletion: model artifacts, prediction captures, access logs, the
salt of hashed capture fields, and the key of the stage's log groups."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.log_group import stage_logs_key
from infra.constructs.secure_bucket import secure_bucket


class StorageStack(Stack):
    """Buckets are created here and handed to stateless stacks as ``IBucket`` objects."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any):
        super().__init__(scope, construct_id, **kwargs)
        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            enforce_ssl=True,
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.artifact_bucket: s3.IBucket = secure_bucket(
            self, "Artifacts", access_logs=self.access_logs_bucket, access_logs_prefix="artifacts/"
        )
        #: Captures hold customers' features: a customer-managed key, so reading them takes a
        #: grant on the key as well as on the bucket (Firehose writes, the drift job reads).
        self.capture_key = kms.Key(
            self,
            "CaptureKey",
            enable_key_rotation=True,
            description="encrypts lambdaserve prediction captures",
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.capture_bucket: s3.IBucket = secure_bucket(
            self,
            "Captures",
            access_logs=self.access_logs_bucket,
            access_logs_prefix="captures/",
            noncurrent_days=30,
            expiration_days=config.capture_retention_days,
            encryption_key=self.capture_key,
        )
        #: Every log group of the stage: the predict function's holds capture records until
        #: Firehose ships them.
        self.logs_key: kms.IKey = stage_logs_key(self, "LogsKey")
        #: The stage's capture secret: the salt of ``capture_hash`` fields and the key the
        #: predict function derives its feedback tokens from (so every version verifies every
        #: other's). State, not config: a new salt makes every hashed value incomparable with
        #: the ones captured before (and voids the tokens of predictions already answered), so
        #: it is retained and never rotated, and it never travels in an environment.
        salt = secretsmanager.Secret(
            self,
            "CaptureSalt",
            description="salt of hashed capture fields and key of feedback tokens (lambdaserve)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True
            ),
        )
        salt.apply_removal_policy(RemovalPolicy.RETAIN)
        self.capture_salt: secretsmanager.ISecret = salt
        CfnOutput(self, "ArtifactBucketName", value=self.artifact_bucket.bucket_name)
        CfnOutput(self, "CaptureBucketName", value=self.capture_bucket.bucket_name)
