"""Stateful storage: every bucket encrypted, versioned, private, TLS-only, logged and retained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import Synthesized, synthesize

pytestmark = pytest.mark.infra


def _buckets(dev: Synthesized) -> dict[str, dict[str, Any]]:
    resources = dev.template_json("storage")["Resources"]
    return {k: v for k, v in resources.items() if v["Type"] == "AWS::S3::Bucket"}


def test_every_bucket_is_encrypted_private_versioned_and_retained(dev: Synthesized) -> None:
    buckets = _buckets(dev)
    assert len(buckets) == 3  # artifacts, captures, access logs
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}, name
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, name
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, name
        assert bucket["DeletionPolicy"] == "Retain", name
        assert bucket["UpdateReplacePolicy"] == "Retain", name


def test_captures_are_sse_kms_with_a_rotated_key_and_expire_after_the_stage_retention(
    dev: Synthesized,
) -> None:
    """Captures hold customers' features: they were kept forever under SSE-S3."""
    buckets = _buckets(dev)
    (captures,) = [v["Properties"] for k, v in buckets.items() if k.startswith("Captures")]
    (rule,) = captures["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key_ref = rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    assert "CaptureKey" in key_ref["Fn::GetAtt"][0] and rule["BucketKeyEnabled"] is True
    resources = dev.template_json("storage")["Resources"]
    key = resources[key_ref["Fn::GetAtt"][0]]
    assert key["Properties"]["EnableKeyRotation"] is True and key["DeletionPolicy"] == "Retain"
    (lifecycle,) = captures["LifecycleConfiguration"]["Rules"]
    assert lifecycle["ExpirationInDays"] == dev.config.capture_retention_days == 90
    assert lifecycle["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert lifecycle["Status"] == "Enabled"


def test_capture_retention_is_a_stage_setting_with_a_floor(tmp_path: Path) -> None:
    tuned = synthesize(tmp_path / "tuned", "dev", {"capture_retention_days": 400})
    (captures,) = [
        v["Properties"]
        for k, v in tuned.template_json("storage")["Resources"].items()
        if k.startswith("Captures") and v["Type"] == "AWS::S3::Bucket"
    ]
    assert captures["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 400
    with pytest.raises(ValueError, match="capture_retention_days"):
        synthesize(tmp_path / "short", "dev", {"capture_retention_days": 3})


def test_the_logs_key_is_rotated_retained_and_usable_by_cloudwatch_logs_of_this_account(
    dev: Synthesized,
) -> None:
    """Without the logs statement CloudWatch Logs refuses to create the encrypted log groups."""
    resources = dev.template_json("storage")["Resources"]
    (key,) = [v for k, v in resources.items() if k.startswith("LogsKey")]
    assert key["Properties"]["EnableKeyRotation"] is True and key["DeletionPolicy"] == "Retain"
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    (logs,) = [s for s in statements if s.get("Sid") == "CloudWatchLogsOfThisAccount"]
    assert logs["Principal"] == {"Service": f"logs.{dev.config.region}.amazonaws.com"}
    assert set(logs["Action"]) == {
        "kms:Encrypt*",
        "kms:Decrypt*",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:Describe*",
    }
    (arn,) = logs["Condition"]["ArnLike"].values()
    assert list(logs["Condition"]["ArnLike"]) == ["kms:EncryptionContext:aws:logs:arn"]
    assert arn == {
        "Fn::Join": [
            "",
            [f"arn:aws:logs:{dev.config.region}:", {"Ref": "AWS::AccountId"}, ":log-group:*"],
        ]
    }


def test_model_and_capture_buckets_write_access_logs(dev: Synthesized) -> None:
    buckets = _buckets(dev)
    logs = next(k for k in buckets if k.startswith("AccessLogs"))
    for name in (k for k in buckets if k.startswith(("Artifacts", "Captures"))):
        logging = buckets[name]["Properties"]["LoggingConfiguration"]
        assert logging["DestinationBucketName"] == {"Ref": logs}


def test_every_bucket_refuses_plain_http(dev: Synthesized) -> None:
    resources = dev.template_json("storage")["Resources"]
    policies = [v for v in resources.values() if v["Type"] == "AWS::S3::BucketPolicy"]
    covered = set()
    for policy in policies:
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
                assert statement["Effect"] == "Deny"
                assert statement["Action"] == "s3:*"
                covered.add(policy["Properties"]["Bucket"]["Ref"])
    assert covered == set(_buckets(dev))


def test_storage_stack_is_protected(dev: Synthesized) -> None:
    assert dev.stacks["storage"].termination_protection is True  # type: ignore[attr-defined]


def test_every_stage_has_one_retained_capture_secret(
    dev: Synthesized, cognito: Synthesized
) -> None:
    """The salt of hashed fields and the key of feedback tokens: a stage that hashes nothing
    still needs it, or feedback could not be checked across versions."""

    def secrets(synth: Synthesized) -> list[dict[str, Any]]:
        resources = synth.template_json("storage")["Resources"]
        return [v for v in resources.values() if v["Type"] == "AWS::SecretsManager::Secret"]

    assert not dev.config.capture_hash and len(secrets(dev)) == 1
    assert cognito.config.capture_hash
    (salt,) = secrets(cognito)
    assert salt["DeletionPolicy"] == salt["UpdateReplacePolicy"] == "Retain"
    generated = salt["Properties"]["GenerateSecretString"]
    assert generated["PasswordLength"] >= 32 and generated["ExcludePunctuation"] is True
    assert "SecretString" not in salt["Properties"]  # generated in AWS, never in the template
    rotations = cognito.template_json("storage")["Resources"].values()
    assert not [r for r in rotations if r["Type"] == "AWS::SecretsManager::RotationSchedule"]
