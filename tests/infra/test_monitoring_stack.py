"""Monitoring: the capture pipeline (log subscription → Firehose → S3), the scheduled drift job
with its retries and dead letters, the alarms, and the contracts with the runtime code (capture
lines and partitions, the drift settings, the drift metrics, the drift code asset and layer)."""

from __future__ import annotations

import gzip
import io
import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import layers.build_layer as build
from infra.config import StageConfigError, load_stage_config
from infra.constructs import capture_pipeline, drift_monitor
from infra.stacks.monitoring_stack import (
    METRICS_DIMENSIONS,
    METRICS_NAMESPACE,
    METRICS_SERVICE,
    across_models,
)
from lambdaserve.aws.drift_metrics import EmfDriftMetrics
from lambdaserve.aws.s3_drift_io import S3CaptureReader
from lambdaserve.kernel.capture import LOG_MARKER, CaptureRecord, partition
from lambdaserve.local.capture_log import capture_line
from lambdaserve.wiring.aws_drift import DriftSettings
from layers.budget import LAMBDA_UNZIPPED_LIMIT, MB
from layers.function_asset import build_drift_asset
from tests.infra.conftest import Synthesized, synthesize
from tests.support.settings_contract import (
    POWERTOOLS_LOGGER,
    assert_environment_is_the_settings,
    settings_from,
)

pytestmark = pytest.mark.infra
DRIFT_STAGE: dict[str, Any] = {
    "region": "eu-central-1",
    "account": "123456789012",
    "architecture": "x86_64",
    "log_retention_days": 90,
    "drift_schedule_expression": "rate(30 minutes)",
    "drift_window_minutes": 30,
    "drift_lateness_minutes": 10,
    "drift_min_samples": 50,
    "drift_persistence_k": 3,
    "drift_persistence_n": 5,
    "heartbeat_hours": 3,
    "capture_mask": ["email", "phone"],
}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """A stage that sets every drift and capture option away from its default."""
    return synthesize(tmp_path_factory.mktemp("cdk-monitoring"), "tuned", DRIFT_STAGE)


def _resources(synth: Synthesized, type_: str) -> dict[str, dict[str, Any]]:
    resources = synth.template_json("monitoring")["Resources"]
    return {k: v for k, v in resources.items() if v["Type"] == type_}


def _one(synth: Synthesized, type_: str, prefix: str = "") -> tuple[str, dict[str, Any]]:
    (item,) = [(k, v) for k, v in _resources(synth, type_).items() if k.startswith(prefix)]
    return item


def _id(synth: Synthesized, type_: str, prefix: str = "") -> str:
    return _one(synth, type_, prefix)[0]


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _grants(statements: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(action, resource, condition) for every allowed pair, JSON-encoded for comparison."""
    found = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        resources = statement["Resource"]
        for action in actions if isinstance(actions, list) else [actions]:
            for resource in resources if isinstance(resources, list) else [resources]:
                condition = json.dumps(statement.get("Condition"), sort_keys=True)
                found.add((action, json.dumps(resource, sort_keys=True), condition))
    return found


def _policy_of(synth: Synthesized, role_id: str) -> list[dict[str, Any]]:
    """Every statement the role is granted: inline policies and attached AWS::IAM::Policy."""
    role = _resources(synth, "AWS::IAM::Role")[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    statements = [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for policy in _resources(synth, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            assert policy["Properties"]["Roles"] == [{"Ref": role_id}]
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _trust(synth: Synthesized, role_id: str) -> dict[str, Any]:
    role = _resources(synth, "AWS::IAM::Role")[role_id]["Properties"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    return statement  # type: ignore[no-any-return]


def _import(export_part: str) -> Any:
    """Matches an ``Fn::ImportValue`` whose export name contains ``export_part``."""

    class _Import:
        def __eq__(self, other: object) -> bool:
            return isinstance(other, dict) and export_part in str(other.get("Fn::ImportValue"))

        def __hash__(self) -> int:
            return 0

    return _Import()


def _objects(bucket: str, prefix: str) -> str:
    return json.dumps(
        {"Fn::Join": ["", [{"Fn::ImportValue": bucket}, f"/{prefix}*"]]}, sort_keys=True
    )


def _flat(parts: list[Any]) -> list[Any]:
    """An ``Fn::Join`` part list as CDK renders it: adjacent literal strings merged."""
    merged: list[Any] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return merged


def _export(synth: Synthesized, kind: str, part: str) -> str:
    """The export name (``<stack>:ExportsOutput...``) of a storage or serving value."""
    text = json.dumps(synth.template_json("monitoring"))
    (name,) = {
        token.split('"')[0]
        for token in text.split('"Fn::ImportValue": "')[1:]
        if token.startswith(f"{synth.config.prefix}-{kind}:") and part in token.split('"')[0]
    }
    return name


# -- the capture pipeline --------------------------------------------------------------------------


def _stream(synth: Synthesized) -> tuple[str, dict[str, Any]]:
    stream_id, stream = _one(synth, "AWS::KinesisFirehose::DeliveryStream")
    return stream_id, stream["Properties"]


def test_firehose_writes_gzip_json_lines_into_hourly_capture_partitions(
    dev: Synthesized,
) -> None:
    _, props = _stream(dev)
    assert props["DeliveryStreamName"] == "lambdaserve-dev-captures"
    assert props["DeliveryStreamType"] == "DirectPut"
    assert props["DeliveryStreamEncryptionConfigurationInput"] == {"KeyType": "AWS_OWNED_CMK"}
    s3 = props["ExtendedS3DestinationConfiguration"]
    assert s3["BucketARN"] == _import("Captures")
    # the stage's one model, churn, in its own partition tree
    assert s3["Prefix"] == "captures/model=churn/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"
    assert s3["ErrorOutputPrefix"].startswith(
        "capture-errors/model=churn/!{firehose:error-output-type}/"
    )
    assert s3["CompressionFormat"] == "GZIP"
    assert s3["FileExtension"] == ".jsonl.gz"
    assert s3["BufferingHints"] == {"IntervalInSeconds": 60, "SizeInMBs": 5}
    assert s3["RoleARN"] == _arn(_id(dev, "AWS::IAM::Role", "CaptureDeliveryRole"))
    # Firehose checks the role's access when the stream is created: its policy exists first.
    _, stream = _one(dev, "AWS::KinesisFirehose::DeliveryStream")
    assert stream["DependsOn"] == [_id(dev, "AWS::IAM::Policy", "CaptureDeliveryRole")]
    logging = s3["CloudWatchLoggingOptions"]
    assert logging["Enabled"] is True
    assert logging["LogGroupName"] == {"Ref": _id(dev, "AWS::Logs::LogGroup", "CaptureDelivery")}


def test_firehose_unwraps_cloudwatch_logs_envelopes_into_the_printed_lines(
    dev: Synthesized,
) -> None:
    """Subscriptions deliver gzip'd envelopes; Firehose decompresses them, keeps each event's
    message (the capture line as printed) and ends every record with a newline."""
    _, props = _stream(dev)
    processing = props["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"]
    assert processing["Enabled"] is True
    assert processing["Processors"] == [
        {
            "Type": "Decompression",
            "Parameters": [{"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}],
        },
        {
            "Type": "CloudWatchLogProcessing",
            "Parameters": [{"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}],
        },
        {"Type": "AppendDelimiterToRecord"},
    ]


def _firehose_key(prefix: str, arrival: datetime) -> str:
    """The key Firehose writes for a record that arrived at ``arrival`` (UTC)."""
    rendered = prefix.replace("!{timestamp:yyyy-MM-dd}", f"{arrival:%Y-%m-%d}")
    rendered = rendered.replace("!{timestamp:HH}", f"{arrival:%H}")
    assert "!{" not in rendered
    name = f"lambdaserve-dev-captures-1-{arrival:%Y-%m-%d-%H-%M-%S}-0a1b2c3d"
    return f"{rendered}{name}{capture_pipeline.FILE_EXTENSION}"


class _FakeS3:
    """The two S3 calls the capture reader makes, over an in-memory bucket."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_paginator(self, name: str) -> _FakeS3:
        assert name == "list_objects_v2"
        return self

    def paginate(self, *, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
        keys = sorted(k for k in self.objects if k.startswith(Prefix))
        return [{"Contents": [{"Key": k} for k in keys]}]

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.objects[Key])}


def _record(moment: datetime, prediction_id: str) -> CaptureRecord:
    return CaptureRecord(
        captured_at=moment,
        prediction_id=prediction_id,
        model_name="churn",
        model_version="3",
        bundle_sha256="a" * 64,
        function_version="7",
        features={"tenure": 12, "plan": "basic"},
        probability=0.25,
        label=0,
        latency_ms=1.5,
    )


def test_what_firehose_writes_is_what_the_drift_reader_reads() -> None:
    """Partition layout, file extension and line framing agree with lambdaserve.kernel.capture
    and the S3 capture reader: two envelopes' messages, each record newline-terminated."""
    moment = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)
    records = [_record(moment, "p1"), _record(moment, "p2"), _record(moment, "p3")]
    lines = [capture_line(r) for r in records]
    # Message extraction keeps each printed line; AppendDelimiterToRecord ends each record.
    body = (lines[0] + lines[1] + "\n" + lines[2] + "\n").encode()
    key = _firehose_key(capture_pipeline.capture_prefix("churn"), moment)
    assert key.startswith(partition(moment, "churn") + "/")
    reader = S3CaptureReader("captures", model="churn", client=_FakeS3({key: gzip.compress(body)}))

    read = list(
        reader(datetime(2026, 11, 27, 10, tzinfo=UTC), datetime(2026, 11, 27, 11, tzinfo=UTC))
    )

    assert [r.prediction_id for r in read] == ["p1", "p2", "p3"]
    assert read[0] == records[0]
    assert reader.invalid_lines == 0


def test_the_subscription_selects_capture_lines_of_the_predict_log_group(
    dev: Synthesized,
) -> None:
    _, subscription = _one(dev, "AWS::Logs::SubscriptionFilter")
    props = subscription["Properties"]
    assert capture_pipeline.LOG_MARKER == LOG_MARKER
    assert props["FilterPattern"] == "{ $.lambdaserve_capture = 1 }"
    line = json.loads(capture_line(_record(datetime(2026, 11, 27, tzinfo=UTC), "p1")))
    assert line[LOG_MARKER] == 1  # what the pattern's selector compares
    assert props["LogGroupName"] == _import("serving:ExportsOutputRefPredictLogs")
    stream_id, _ = _stream(dev)
    assert props["DestinationArn"] == _arn(stream_id)
    assert props["RoleArn"] == _arn(_id(dev, "AWS::IAM::Role", "CaptureSubscriptionRole"))


@pytest.mark.parametrize(("name", "region"), [("dev", "us-east-1"), ("cognito", "eu-west-1")])
def test_cloudwatch_logs_may_only_put_records_into_the_capture_stream(
    name: str, region: str, request: pytest.FixtureRequest
) -> None:
    synth: Synthesized = request.getfixturevalue(name)
    role_id = _id(synth, "AWS::IAM::Role", "CaptureSubscriptionRole")
    trust = _trust(synth, role_id)
    assert trust["Principal"] == {"Service": f"logs.{region}.amazonaws.com"}
    # Only on behalf of the predict function's log group, of this account: not any log group.
    assert set(trust["Condition"]) == {"ArnLike", "StringEquals"}
    account: Any = synth.config.account or {"Ref": "AWS::AccountId"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": account}
    log_group = {"Fn::ImportValue": _export(synth, "serving", "RefPredictLogs")}
    arn = ["arn:aws:logs:", region, ":", account, ":log-group:", log_group]
    source_arns = trust["Condition"]["ArnLike"]["aws:SourceArn"]
    assert [part for a in source_arns for part in a["Fn::Join"][1]] == [
        *_flat(arn),
        *_flat(arn),
        ":*",
    ]
    stream_id, _ = _stream(synth)
    stream = json.dumps(_arn(stream_id), sort_keys=True)
    assert _grants(_policy_of(synth, role_id)) == {
        ("firehose:PutRecord", stream, "null"),
        ("firehose:PutRecordBatch", stream, "null"),
    }


def test_firehose_may_write_only_capture_objects_and_its_error_log(dev: Synthesized) -> None:
    role_id = _id(dev, "AWS::IAM::Role", "CaptureDeliveryRole")
    trust = _trust(dev, role_id)
    assert trust["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}}
    captures = _export(dev, "storage", "GetAttCaptures")
    bucket = json.dumps({"Fn::ImportValue": captures}, sort_keys=True)
    capture_key = json.dumps({"Fn::ImportValue": _export(dev, "storage", "CaptureKey")})
    grants = _grants(_policy_of(dev, role_id))
    logs = {g for g in grants if g[0].startswith("logs:")}
    assert {g[0] for g in logs} == {"logs:PutLogEvents"}
    (log_stream,) = [g[1] for g in logs]
    assert _id(dev, "AWS::Logs::LogStream") in log_stream
    assert grants - logs == {
        ("s3:GetBucketLocation", bucket, "null"),
        ("s3:ListBucket", bucket, "null"),
        ("s3:ListBucketMultipartUploads", bucket, "null"),
        *(
            (action, _objects(captures, prefix), "null")
            for action in ("s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject")
            for prefix in ("captures/model=churn/", "capture-errors/model=churn/")
        ),
        # The capture bucket is SSE-KMS: S3 makes each delivery's data key for the writer.
        ("kms:GenerateDataKey", capture_key, "null"),
        ("kms:Decrypt", capture_key, "null"),
    }


# -- the drift function ----------------------------------------------------------------------------


def _function(synth: Synthesized) -> tuple[str, dict[str, Any]]:
    function_id, function = _one(synth, "AWS::Lambda::Function", "DriftFunction")
    return function_id, function["Properties"]


@pytest.mark.parametrize("name", ["dev", "cognito"])
def test_the_drift_function_shape(name: str, request: pytest.FixtureRequest) -> None:
    synth: Synthesized = request.getfixturevalue(name)
    _, props = _function(synth)
    assert props["FunctionName"] == f"{synth.config.prefix}-drift"
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == [synth.config.architecture]
    assert props["Handler"] == "functions.drift.handler.lambda_handler"
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["MemorySize"] == drift_monitor.MEMORY_MB
    assert props["Timeout"] == drift_monitor.TIMEOUT.to_seconds()
    # One run at a time, and never starved by a surge elsewhere in the account.
    assert props["ReservedConcurrentExecutions"] == drift_monitor.RESERVED_CONCURRENCY == 1
    assert props["Role"] == _arn(_id(synth, "AWS::IAM::Role", "DriftRole"))
    (layer,) = props["Layers"]
    layer_props = _resources(synth, "AWS::Lambda::LayerVersion")[layer["Ref"]]["Properties"]
    assert layer_props["CompatibleArchitectures"] == [synth.config.architecture]
    assert layer_props["CompatibleRuntimes"] == ["python3.13"]
    assert props["LoggingConfig"]["LogGroup"] == {
        "Ref": _id(synth, "AWS::Logs::LogGroup", "DriftFunctionLogs")
    }


def test_the_drift_role_is_least_privilege(dev: Synthesized) -> None:
    role_id = _id(dev, "AWS::IAM::Role", "DriftRole")
    assert _trust(dev, role_id)["Principal"] == {"Service": "lambda.amazonaws.com"}
    captures = _export(dev, "storage", "GetAttCaptures")
    artifacts = _export(dev, "storage", "GetAttArtifacts")
    topic = json.dumps({"Fn::ImportValue": _export(dev, "serving", "RefAlarmTopic")})
    # The topic's customer-managed key: SNS refuses an encrypted publish without it.
    alarm_key = json.dumps({"Fn::ImportValue": _export(dev, "serving", "AlarmTopicKey")})
    queue = json.dumps(_arn(_id(dev, "AWS::SQS::Queue")))
    logs_id = _id(dev, "AWS::Logs::LogGroup", "DriftFunctionLogs")
    own_logs = {
        json.dumps(_arn(logs_id)),
        json.dumps({"Fn::Join": ["", [_arn(logs_id), ":*"]]}, sort_keys=True),
    }

    def condition(value: dict[str, Any]) -> str:
        return json.dumps(value, sort_keys=True)

    assert _grants(_policy_of(dev, role_id)) == {
        *(
            (action, r, "null")
            for action in ("logs:CreateLogStream", "logs:PutLogEvents")
            for r in own_logs
        ),
        ("xray:PutTraceSegments", '"*"', "null"),
        ("xray:PutTelemetryRecords", '"*"', "null"),
        (
            "s3:ListBucket",
            json.dumps({"Fn::ImportValue": captures}),
            # captures/ itself names the models; each judged model's tree holds its partitions
            condition({"StringLike": {"s3:prefix": ["captures/", "captures/model=churn/*"]}}),
        ),
        ("s3:GetObject", _objects(captures, "captures/model=churn/"), "null"),
        ("s3:GetObject", _objects(artifacts, "models/churn/"), "null"),
        ("s3:GetObjectVersion", _objects(artifacts, "models/churn/"), "null"),
        ("s3:GetObject", _objects(artifacts, "drift-reports/churn/"), "null"),
        (
            "s3:PutObject",
            _objects(artifacts, "drift-reports/churn/"),
            condition({"Null": {"s3:if-none-match": "false"}}),  # create-only
        ),
        # Listed only where the job lists (reports; a model's versions), never the bucket.
        (
            "s3:ListBucket",
            json.dumps({"Fn::ImportValue": artifacts}),
            condition({"StringLike": {"s3:prefix": ["drift-reports/churn/*", "models/churn/*"]}}),
        ),
        ("sns:Publish", topic, "null"),
        ("kms:Decrypt", alarm_key, "null"),
        ("kms:GenerateDataKey*", alarm_key, "null"),
        # Captures are SSE-KMS under the storage stack's key.
        (
            "kms:Decrypt",
            json.dumps({"Fn::ImportValue": _export(dev, "storage", "CaptureKey")}),
            "null",
        ),
        ("sqs:SendMessage", queue, "null"),
    }


def test_the_drift_role_reads_and_lists_only_the_stages_model(cognito: Synthesized) -> None:
    """A stage whose configuration names its model (here by model_uri, models/churn/3/...):
    its bundles and its reports, not another model's."""
    role_id = _id(cognito, "AWS::IAM::Role", "DriftRole")
    artifacts = json.dumps({"Fn::ImportValue": _export(cognito, "storage", "GetAttArtifacts")})
    grants = [g for g in _grants(_policy_of(cognito, role_id)) if "Artifacts" in g[1]]
    by_action: dict[str, set[tuple[str, str]]] = {}
    for action, resource, condition in grants:
        by_action.setdefault(action, set()).add((resource, condition))
    objects = _objects(_export(cognito, "storage", "GetAttArtifacts"), "")
    bundles = objects.replace("/*", "/models/churn/*")
    reports = objects.replace("/*", "/drift-reports/churn/*")
    assert by_action["s3:GetObject"] == {(bundles, "null"), (reports, "null")}
    assert by_action["s3:GetObjectVersion"] == {(bundles, "null")}
    assert {r for r, _ in by_action["s3:PutObject"]} == {reports}
    prefixes = {"StringLike": {"s3:prefix": ["drift-reports/churn/*", "models/churn/*"]}}
    assert by_action["s3:ListBucket"] == {(artifacts, json.dumps(prefixes, sort_keys=True))}


def _environment(synth: Synthesized) -> dict[str, Any]:
    return _function(synth)[1]["Environment"]["Variables"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["dev", "tuned"])
def test_the_environment_is_exactly_the_drift_settings_model(
    name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    synth: Synthesized = request.getfixturevalue(name)
    environment = _environment(synth)
    assert_environment_is_the_settings(environment, DriftSettings, powertools=POWERTOOLS_LOGGER)
    assert environment["CAPTURE_BUCKET"] == _import("storage:ExportsOutputRefCaptures")
    assert environment["ARTIFACT_BUCKET"] == _import("storage:ExportsOutputRefArtifacts")
    assert environment["ALARM_TOPIC_ARN"] == _import("serving:ExportsOutputRefAlarmTopic")
    resolved = {
        **environment,
        "CAPTURE_BUCKET": "lambdaserve-storage-capturesde857d5d-abc",
        "ARTIFACT_BUCKET": "lambdaserve-storage-artifacts82dd59a1-abc",
        "ALARM_TOPIC_ARN": f"arn:aws:sns:{synth.config.region}:123456789012:alarms",
    }
    settings = settings_from(DriftSettings, resolved, monkeypatch)
    config = synth.config
    assert settings.window_minutes == config.drift_window_minutes
    assert settings.lateness_minutes == config.drift_lateness_minutes
    assert settings.min_samples == config.drift_min_samples
    assert (settings.persistence_k, settings.persistence_n) == (
        config.drift_persistence_k,
        config.drift_persistence_n,
    )
    assert settings.capture_mask == frozenset(config.capture_mask)
    assert settings.capture_hash == frozenset(config.capture_hash)


def test_tuned_capture_policy_reaches_the_drift_job(tuned: Synthesized) -> None:
    environment = _environment(tuned)
    assert environment["CAPTURE_MASK"] == "email,phone"
    assert environment["CAPTURE_HASH"] == ""  # hashing is refused until the salt is a secret
    assert environment["WINDOW_MINUTES"] == "30"


# -- the schedule, retries and dead letters --------------------------------------------------------


def _schedule(synth: Synthesized) -> dict[str, Any]:
    return _one(synth, "AWS::Scheduler::Schedule")[1]["Properties"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("name", "expression", "max_age"),
    [("dev", "rate(1 hour)", 3600), ("tuned", "rate(30 minutes)", 1800)],
)
def test_the_schedule_invokes_the_drift_function_with_its_scheduled_time(
    name: str, expression: str, max_age: int, request: pytest.FixtureRequest
) -> None:
    synth: Synthesized = request.getfixturevalue(name)
    props = _schedule(synth)
    assert props["Name"] == f"{synth.config.prefix}-drift"
    assert props["ScheduleExpression"] == expression == synth.config.drift_schedule_expression
    assert props["ScheduleExpressionTimezone"] == "UTC"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert props["State"] == "ENABLED"
    target = props["Target"]
    function_id, _ = _function(synth)
    assert target["Arn"] == _arn(function_id)
    assert json.loads(target["Input"]) == {
        "time": "<aws.scheduler.scheduled-time>",
        "model_name": "churn",
    }
    # one run's retries stay within its window (a later one judges the next window)
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": max_age}
    assert target["DeadLetterConfig"] == {"Arn": _arn(_id(synth, "AWS::SQS::Queue"))}
    assert target["RoleArn"] == _arn(_id(synth, "AWS::IAM::Role", "DriftSchedulerRole"))


def test_the_scheduler_may_only_invoke_the_drift_function_and_dead_letter(
    dev: Synthesized,
) -> None:
    role_id = _id(dev, "AWS::IAM::Role", "DriftSchedulerRole")
    trust = _trust(dev, role_id)
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    function_id, _ = _function(dev)
    assert _grants(_policy_of(dev, role_id)) == {
        ("lambda:InvokeFunction", json.dumps(_arn(function_id)), "null"),
        ("sqs:SendMessage", json.dumps(_arn(_id(dev, "AWS::SQS::Queue"))), "null"),
    }


def test_failed_runs_are_retried_then_dead_lettered(dev: Synthesized) -> None:
    """Scheduler invokes Lambda asynchronously: a run that fails is retried by Lambda and then
    sent to the same queue as the events Scheduler could not deliver."""
    _, invoke = _one(dev, "AWS::Lambda::EventInvokeConfig")
    props = invoke["Properties"]
    function_id, _ = _function(dev)
    assert props["FunctionName"] == {"Ref": function_id}
    assert props["Qualifier"] == "$LATEST"
    assert props["MaximumRetryAttempts"] == 2
    assert props["MaximumEventAgeInSeconds"] == 3600
    queue = _arn(_id(dev, "AWS::SQS::Queue"))
    assert props["DestinationConfig"] == {"OnFailure": {"Destination": queue}}
    policy_id = _id(dev, "AWS::IAM::Policy", "DriftRoleDefaultPolicy")
    assert policy_id in invoke["DependsOn"]  # Lambda checks the role can send when it is set


def test_the_dead_letter_queue_is_encrypted_and_tls_only(dev: Synthesized) -> None:
    queue_id, queue = _one(dev, "AWS::SQS::Queue")
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    (policy,) = _resources(dev, "AWS::SQS::QueuePolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert policy["Properties"]["Queues"] == [{"Ref": queue_id}]


# -- alarms ----------------------------------------------------------------------------------------


def _alarms(synth: Synthesized) -> dict[str, dict[str, Any]]:
    alarms = _resources(synth, "AWS::CloudWatch::Alarm")
    by_name = {}
    for logical_id, alarm in alarms.items():
        name = next(
            n
            for n in (
                "DriftDetected",
                "DriftErrors",
                "DriftHeartbeat",
                "DriftDeadLetters",
                "CaptureFreshness",
            )
            if logical_id.startswith(n)
        )
        by_name[name] = alarm["Properties"]
    assert len(by_name) == len(alarms) == 5
    return by_name


def test_every_alarm_notifies_the_serving_alarm_topic(dev: Synthesized) -> None:
    topic = _import("serving:ExportsOutputRefAlarmTopic")
    for name, alarm in _alarms(dev).items():
        assert alarm["AlarmActions"] == [topic], name
        assert alarm["OKActions"] == [topic], name


def _query(alarm: dict[str, Any]) -> tuple[str, int]:
    (query,) = alarm["Metrics"]
    assert query["ReturnData"] is True
    return query["Expression"], query["Period"]


@pytest.mark.parametrize(("name", "hours"), [("dev", 2), ("tuned", 3)])
def test_drift_alarm_reads_every_model_version_and_the_heartbeat_every_run(
    name: str, hours: int, request: pytest.FixtureRequest
) -> None:
    synth: Synthesized = request.getfixturevalue(name)
    alarms = _alarms(synth)
    drift = alarms["DriftDetected"]
    assert _query(drift) == (across_models("MAX", "DatasetDrift"), 3600)
    assert (drift["Threshold"], drift["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert drift["TreatMissingData"] == "notBreaching"
    heartbeat = alarms["DriftHeartbeat"]
    # Every completed run of the stage's model (its schedule names it), with or without traffic
    # to judge: one series, a plain metric alarm.
    assert (heartbeat["Namespace"], heartbeat["MetricName"]) == ("lambdaserve", "DriftJobRuns")
    assert heartbeat["Dimensions"] == [
        {"Name": "model_name", "Value": "churn"},
        {"Name": "service", "Value": "drift"},
    ]
    assert (heartbeat["Statistic"], heartbeat["Period"]) == ("Sum", 3600)
    assert (heartbeat["Threshold"], heartbeat["ComparisonOperator"]) == (1, "LessThanThreshold")
    assert heartbeat["TreatMissingData"] == "breaching"  # no data at all is the failure it reports
    assert heartbeat["EvaluationPeriods"] == heartbeat["DatapointsToAlarm"] == hours
    assert hours == synth.config.heartbeat_hours


def test_errors_dead_letters_and_capture_freshness_alarms(dev: Synthesized) -> None:
    alarms = _alarms(dev)
    function_id, _ = _function(dev)
    errors = alarms["DriftErrors"]
    assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == (
        "AWS/Lambda",
        "Errors",
        "Sum",
    )
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    dead = alarms["DriftDeadLetters"]
    assert (dead["Namespace"], dead["MetricName"], dead["Statistic"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
    )
    queue_id = _id(dev, "AWS::SQS::Queue")
    assert dead["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}
    ]
    fresh = alarms["CaptureFreshness"]
    assert (fresh["Namespace"], fresh["MetricName"]) == (
        "AWS/Firehose",
        "DeliveryToS3.DataFreshness",
    )
    assert fresh["Dimensions"] == [
        {"Name": "DeliveryStreamName", "Value": {"Ref": _stream(dev)[0]}}
    ]
    assert fresh["Threshold"] == dev.config.drift_lateness_minutes * 60
    for alarm in (errors, dead, fresh):
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 1
    assert (errors["Threshold"], dead["Threshold"]) == (1, 1)


class _Dataset:
    verdict = "drift"
    drifted_features = ("tenure",)


class _Report:
    model_name = "churn"
    model_version = "3"
    dataset = _Dataset()
    persistent = False


def test_the_alarm_queries_match_the_metrics_the_drift_handler_emits(
    dev: Synthesized, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run the handler's EMF metrics under the deployed environment: the namespace, the full
    dimension set and the metric names are what the Metrics Insights queries select."""
    for key, value in _environment(dev).items():
        if key.startswith("POWERTOOLS_"):
            monkeypatch.setenv(key, value)
    EmfDriftMetrics().report(_Report())  # type: ignore[arg-type]
    (document,) = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line
    ]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == METRICS_NAMESPACE
    assert [sorted(d) for d in directive["Dimensions"]] == [sorted(METRICS_DIMENSIONS)]
    assert document["service"] == METRICS_SERVICE
    assert {"DriftRuns", "DatasetDrift"} <= {m["Name"] for m in directive["Metrics"]}
    assert document["DriftRuns"] == [1.0] and document["DatasetDrift"] == [1.0]


# -- logs, outputs, configuration ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dev", "tuned"])
def test_every_log_group_has_retention_and_the_stage_logs_key(
    name: str, request: pytest.FixtureRequest
) -> None:
    synth: Synthesized = request.getfixturevalue(name)
    groups = _resources(synth, "AWS::Logs::LogGroup")
    assert len(groups) == 2  # the drift function's, Firehose's delivery errors
    logs_key = {"Fn::ImportValue": _export(synth, "storage", "GetAttLogsKey")}
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == synth.config.log_retention_days
        assert group["Properties"]["KmsKeyId"] == logs_key


def test_outputs_name_the_drift_function_schedule_queue_and_stream(dev: Synthesized) -> None:
    outputs = dev.template_json("monitoring")["Outputs"]
    assert set(outputs) == {
        "DriftFunctionName",
        "DriftScheduleName",
        "DriftDeadLetterQueueUrl",
        "CaptureDeliveryStreamName",
    }


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ({"drift_schedule_expression": "at(2026-11-27T10:00:00)"}, "drift_schedule_expression"),
        ({"drift_window_minutes": 7}, "drift_window_minutes must divide a day"),
        ({"drift_schedule_expression": "rate(2 hours)"}, "windows of 60 min"),
        ({"heartbeat_hours": 1}, "heartbeat_hours \\(1\\) must be longer"),
        ({"heartbeat_hours": 25}, "heartbeat_hours: Input should be less than or equal to 24"),
        ({"drift_lateness_minutes": 1}, "drift_lateness_minutes must exceed Firehose.s 60 s"),
        ({"drift_persistence_k": 4}, "drift_persistence_k cannot exceed"),
        ({"capture_mask": ["a,b"]}, "capture_mask/capture_hash name feature names"),
    ],
)
def test_invalid_drift_settings_name_the_field(stage: dict[str, Any], message: str) -> None:
    with pytest.raises(StageConfigError, match=message):
        load_stage_config(
            {"stage": "dev", "lambdaserve:stages": {"dev": {"model_name": "churn", **stage}}}
        )


def test_a_cron_schedule_is_accepted_without_an_interval_check() -> None:
    config = load_stage_config(
        {
            "stage": "dev",
            "lambdaserve:stages": {
                "dev": {"model_name": "churn", "drift_schedule_expression": "cron(5 * * * ? *)"}
            },
        }
    )
    assert config.drift_interval_minutes is None


# -- the drift code asset and layer ----------------------------------------------------------------


def test_the_drift_asset_is_the_handlers_import_closure(tmp_path: Path) -> None:
    size = build_drift_asset(tmp_path)
    files = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.py")}
    assert size < 1 * MB
    assert {
        "functions/drift/handler.py",
        "lambdaserve/drift/job.py",
        "lambdaserve/drift/report.py",
        "lambdaserve/drift/statistics.py",
        "lambdaserve/aws/s3_drift_io.py",
        "lambdaserve/aws/s3_artifact_store.py",
    } <= files
    assert not any(f.startswith(("functions/predict/", "functions/rollout/")) for f in files)
    for absent in ("serving/", "cli/", "registry/", "training/", "kernel/predictors.py"):
        assert not any(f.startswith(f"lambdaserve/{absent}") for f in files), absent
    assert (tmp_path / "functions" / "drift" / "__pycache__").is_dir()


HOST_ARCH = {"x86_64": "x86_64", "aarch64": "arm64"}.get(platform.machine())


@pytest.mark.skipif(sys.platform != "linux" or HOST_ARCH is None, reason="Linux host only")
def test_the_drift_layer_fits_the_budget_and_runs_the_handler(tmp_path: Path) -> None:
    """The layer CDK bundles (serving-base + drift, budget checked with the drift asset), then
    the handler and SciPy import from that layer and the asset alone, as on Lambda."""
    assert HOST_ARCH is not None
    reports, function_bytes = build.build_combined(
        ["serving-base", "drift"], arch=HOST_ARCH, output_dir=tmp_path / "layer", function="drift"
    )
    total = function_bytes + sum(r.unzipped_bytes for r in reports)
    assert total < LAMBDA_UNZIPPED_LIMIT
    assert {r.name for r in reports} == {"serving-base", "drift"}
    build_drift_asset(tmp_path / "task")
    script = (
        "import sys, json\n"
        "sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import functions.drift.handler as handler\n"
        "from lambdaserve.drift.lambda_job import DriftEvent\n"
        "import scipy.stats, numpy\n"
        "from lambdaserve.drift import statistics as drift_stats\n"
        "event = DriftEvent.model_validate({'time': '2026-11-27T12:05:00Z'})\n"
        "print(json.dumps({'handler': handler.__file__, 'scipy': scipy.__file__,\n"
        "                  'numpy': numpy.__file__, 'time': event.time.isoformat()}))\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-S",
            "-I",
            "-c",
            script,
            str(tmp_path / "task"),
            str(tmp_path / "layer" / "python"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert found["handler"].startswith(str(tmp_path / "task"))
    assert found["scipy"].startswith(str(tmp_path / "layer" / "python"))
    assert found["numpy"].startswith(str(tmp_path / "layer" / "python"))
    assert found["time"] == "2026-11-27T12:05:00+00:00"
