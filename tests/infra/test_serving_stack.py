"""Serving: function, the live alias, API authorization and validation, alarms, log retention."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match
from fastapi.routing import APIRoute
from starlette.routing import Route

from infra.constructs.predict_api import ROUTES
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.serving.app import create_app
from lambdaserve.serving.model_loader import LoadedModel
from tests.infra.conftest import Synthesized, synthesize

pytestmark = pytest.mark.infra
#: Pages the app serves locally that the REST API leaves out on purpose.
UNPUBLISHED = {"/redoc", "/docs/oauth2-redirect"}


def _resources(synth: Synthesized, kind: str, type_: str) -> dict[str, dict[str, Any]]:
    resources = synth.template_json(kind)["Resources"]
    return {k: v for k, v in resources.items() if v["Type"] == type_}


def _one(synth: Synthesized, type_: str, prefix: str) -> tuple[str, dict[str, Any]]:
    """The one resource of ``type_`` whose logical ID starts with ``prefix`` (the serving stack
    also holds the rollout function, its layer and roles: see test_rollout_machine.py)."""
    (item,) = [
        (k, v) for k, v in _resources(synth, "serving", type_).items() if k.startswith(prefix)
    ]
    return item


def test_function_shape(dev: Synthesized) -> None:
    _, function = _one(dev, "AWS::Lambda::Function", "Predict")
    props = function["Properties"]
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "functions.predict.handler.lambda_handler"
    assert props["MemorySize"] == dev.config.memory_mb
    assert props["Timeout"] == dev.config.timeout_seconds
    assert props["ReservedConcurrentExecutions"] == dev.config.reserved_concurrency
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert len(props["Layers"]) == 1
    assert "LoggingConfig" in props


def test_other_stage_choices_reach_the_function(cognito: Synthesized) -> None:
    _, function = _one(cognito, "AWS::Lambda::Function", "Predict")
    props = function["Properties"]
    assert props["Architectures"] == ["x86_64"]
    variables = props["Environment"]["Variables"]
    assert variables["MODEL_URI"] == "s3://bucket/models/churn/3/bundle.tar.gz"
    assert variables["MODEL_SHA256"] == "a" * 64
    assert variables["PREFERRED_RUNTIME"] == "sklearn"
    # The stage's own code is in the asset and trusted from the setting, never from a bundle.
    assert variables["CODE_DIRS"] == "/var/task/custom_code"
    assert variables["TRUSTED_TYPES"] == "penguin_features.BillShape"
    _, layer = _one(cognito, "AWS::Lambda::LayerVersion", "ServingLayer")
    assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]


def test_predict_role_is_least_privilege(dev: Synthesized) -> None:
    roles = {
        k: v
        for k, v in _resources(dev, "serving", "AWS::IAM::Role").items()
        if not k.startswith("Rollout")  # the rollout function's and machine's: their own tests
    }
    assert len(roles) == 2  # the function's, and API Gateway's account-level logging role
    role = next(v for k, v in roles.items() if k.startswith("PredictRole"))
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "lambda.amazonaws.com"
    }
    assert "ManagedPolicyArns" not in role["Properties"]
    logging_role = next(v for k, v in roles.items() if not k.startswith("PredictRole"))
    (managed,) = logging_role["Properties"]["ManagedPolicyArns"]
    assert "AmazonAPIGatewayPushToCloudWatchLogs" in json.dumps(managed)
    _, policy = _one(dev, "AWS::IAM::Policy", "PredictRole")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    actions = {
        tuple(sorted([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
        for s in statements
    }
    assert actions == {
        ("secretsmanager:GetSecretValue",),  # the capture secret: every stage has one
        ("ssm:GetParameter",),  # the stage's capture policy
        ("logs:CreateLogStream", "logs:PutLogEvents"),
        ("xray:PutTelemetryRecords", "xray:PutTraceSegments"),
        ("s3:GetObject", "s3:GetObjectVersion"),
    }
    s3 = next(s for s in statements if s["Action"][0].startswith("s3:"))
    # The stage's model (model_name churn in cdk.json): its bundles only.
    assert json.dumps(s3["Resource"]).endswith('"/models/churn/*"]]}')
    logs = next(s for s in statements if s["Action"][0].startswith("logs:"))
    assert all("PredictLogs" in json.dumps(r) for r in logs["Resource"])
    assert all(s["Effect"] == "Allow" for s in statements)


def test_the_predict_role_reads_only_the_bundles_of_the_stages_model(cognito: Synthesized) -> None:
    """The cognito stage pins models/churn/3/... (model_uri): only churn's bundles are readable,
    at any version (versions are published after deploy), and no other model's."""
    _, policy = _one(cognito, "AWS::IAM::Policy", "PredictRole")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (s3,) = [s for s in statements if s["Action"][0].startswith("s3:")]
    assert s3["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    (join,) = [s3["Resource"]] if isinstance(s3["Resource"], dict) else s3["Resource"]
    assert join["Fn::Join"][1][-1] == "/models/churn/*"
    assert "Condition" not in s3


def test_only_the_predict_role_reads_the_capture_salt_and_only_it(cognito: Synthesized) -> None:
    _, policy = _one(cognito, "AWS::IAM::Policy", "PredictRole")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (salt,) = [s for s in statements if "secretsmanager" in json.dumps(s["Action"])]
    assert salt["Action"] == "secretsmanager:GetSecretValue"
    assert salt["Resource"] == {"Fn::ImportValue": _salt_export(cognito)}
    others = _resources(cognito, "serving", "AWS::IAM::Policy")
    readers = [k for k, v in others.items() if "secretsmanager" in json.dumps(v)]
    assert len(readers) == 1 and readers[0].startswith("PredictRole")
    _, function = _one(cognito, "AWS::Lambda::Function", "Predict")
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["CAPTURE_SALT_SECRET"] == {"Fn::ImportValue": _salt_export(cognito)}
    assert "CAPTURE_HASH" not in variables  # in the policy parameter, re-read by every version
    assert "CAPTURE_SALT" not in variables


def _salt_export(synth: Synthesized) -> str:
    (name,) = [
        output["Export"]["Name"]
        for output in synth.template_json("storage").get("Outputs", {}).values()
        if "CaptureSalt" in json.dumps(output["Value"])
    ]
    return str(name)


def test_live_alias_is_created_once_on_a_fixed_bootstrap_version(dev: Synthesized) -> None:
    aliases = _resources(dev, "serving", "AWS::Lambda::Alias")
    assert len(aliases) == 1
    (alias,) = aliases.values()
    assert alias["Properties"]["Name"] == "live"
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": ["BootstrapVersion", "Version"]}
    assert "RoutingConfig" not in alias["Properties"]  # weights belong to the controller
    version = dev.template_json("serving")["Resources"]["BootstrapVersion"]
    assert version["Type"] == "AWS::Lambda::Version"
    assert version["DeletionPolicy"] == "Retain"
    assert set(version["Properties"]) == {"FunctionName", "Description"}  # no CodeSha256


def test_a_redeploy_with_new_code_and_config_leaves_the_alias_alone(
    dev: Synthesized, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Different memory, timeout, model and runtime: the alias and its version are byte-for-byte
    the same resources, so CloudFormation does not touch them and the controller's weights stay."""
    changed = synthesize(
        tmp_path_factory.mktemp("cdk-redeploy"),
        "dev",
        {
            "memory_mb": 3008,
            "timeout_seconds": 20,
            "runtime": "sklearn",
            "model_uri": "s3://bucket/models/churn/9/bundle.tar.gz",
            "model_sha256": "b" * 64,
        },
    )
    before = dev.template_json("serving")["Resources"]
    after = changed.template_json("serving")["Resources"]
    (alias_id,) = _resources(dev, "serving", "AWS::Lambda::Alias")
    assert after[alias_id] == before[alias_id]
    assert after["BootstrapVersion"] == before["BootstrapVersion"]
    function_id, _ = _one(dev, "AWS::Lambda::Function", "Predict")
    assert after[function_id] != before[function_id]  # the change is real


def test_the_api_routes_are_the_apps_routes(churn_bundle: VerifiedBundle) -> None:
    """Every route the FastAPI app serves is a route of the REST API (and no more), except
    the alternative documentation pages."""
    app = create_app(LoadedModel.from_bundle(churn_bundle))
    served = {
        (route.path.lstrip("/"), method)
        for route in app.routes
        if isinstance(route, APIRoute | Route) and route.path not in UNPUBLISHED
        for method in (route.methods or ()) - {"HEAD"}
    }
    assert served == {(path, method) for path, methods in ROUTES.items() for method in methods}


def test_every_api_method_is_authorized_and_validated(dev: Synthesized) -> None:
    methods = _resources(dev, "serving", "AWS::ApiGateway::Method")
    assert len(methods) == sum(len(m) for m in ROUTES.values())  # no catch-all, no OPTIONS
    for name, method in methods.items():
        props = method["Properties"]
        assert props["AuthorizationType"] == "AWS_IAM", name
        assert "RequestValidatorId" in props, name
        if props["HttpMethod"] == "POST":
            assert "application/json" in props["RequestModels"], name
        assert props["Integration"]["Type"] == "AWS_PROXY"
    (validator,) = _resources(dev, "serving", "AWS::ApiGateway::RequestValidator").values()
    assert validator["Properties"]["ValidateRequestBody"] is True
    assert validator["Properties"]["ValidateRequestParameters"] is True


def test_api_targets_the_alias_not_latest(dev: Synthesized) -> None:
    (alias_id,) = _resources(dev, "serving", "AWS::Lambda::Alias")
    methods = _resources(dev, "serving", "AWS::ApiGateway::Method").values()
    for method in methods:
        assert alias_id in json.dumps(method["Properties"]["Integration"]["Uri"])


def test_cognito_mode_authorizes_every_method_with_the_pool(cognito: Synthesized) -> None:
    (authorizer,) = _resources(cognito, "serving", "AWS::ApiGateway::Authorizer").values()
    assert authorizer["Properties"]["Type"] == "COGNITO_USER_POOLS"
    methods = _resources(cognito, "serving", "AWS::ApiGateway::Method").values()
    for method in methods:
        props = method["Properties"]
        if props["HttpMethod"] == "OPTIONS":  # CORS preflight carries no credentials
            assert props["AuthorizationType"] == "NONE"
            continue
        assert props["AuthorizationType"] == "COGNITO_USER_POOLS"


def test_cors_names_origins_and_never_star(dev: Synthesized, cognito: Synthesized) -> None:
    dev_text = json.dumps(dev.template_json("serving"))
    assert "Access-Control-Allow-Origin" not in dev_text
    text = json.dumps(cognito.template_json("serving"))
    assert "https://app.example.com" in text
    assert "Access-Control-Allow-Origin': '*'" not in text.replace('\\"', "'")
    assert "'*'" not in json.dumps(
        [
            m["Properties"].get("Integration", {}).get("IntegrationResponses", [])
            for m in _resources(cognito, "serving", "AWS::ApiGateway::Method").values()
        ]
    )


def test_stage_throttling_access_logs_and_tracing(dev: Synthesized) -> None:
    (stage,) = _resources(dev, "serving", "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    assert "requestId" in props["AccessLogSetting"]["Format"]
    (settings,) = props["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == dev.config.throttle_rate_limit
    assert settings["ThrottlingBurstLimit"] == dev.config.throttle_burst_limit
    assert settings["DataTraceEnabled"] is False


def test_waf_protects_the_stage_when_enabled(dev: Synthesized, cognito: Synthesized) -> None:
    (association,) = _resources(dev, "serving", "AWS::WAFv2::WebACLAssociation").values()
    assert "PredictApi" in json.dumps(association["Properties"]["ResourceArn"])
    (acl,) = _resources(dev, "serving", "AWS::WAFv2::WebACL").values()
    common = acl["Properties"]["Rules"][0]["Statement"]["ManagedRuleGroupStatement"]
    assert common["Name"] == "AWSManagedRulesCommonRuleSet"
    # batches are bigger than the rule set's 8 KB body limit: that rule only counts
    assert common["RuleActionOverrides"][0]["Name"] == "SizeRestrictions_BODY"
    assert not _resources(cognito, "serving", "AWS::WAFv2::WebACL")


def _alarm_dimensions(alarm: dict[str, Any]) -> dict[str, str]:
    return {d["Name"]: json.dumps(d["Value"]) for d in alarm["Properties"].get("Dimensions", [])}


def test_alarms_per_alias_per_version_and_api_notify_sns(dev: Synthesized) -> None:
    alarms = {  # the rollout state machine's own alarms: test_rollout_machine.py
        k: v
        for k, v in _resources(dev, "serving", "AWS::CloudWatch::Alarm").items()
        if v["Properties"]["Namespace"] != "AWS/States"
    }
    (topic_id,) = _resources(dev, "serving", "AWS::SNS::Topic")
    seen = set()
    for alarm in alarms.values():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": topic_id}]
        assert props["OKActions"] == [{"Ref": topic_id}]
        dimensions = _alarm_dimensions(alarm)
        if props["Namespace"] == "AWS/Lambda":
            assert ":live" in dimensions["Resource"]
            scope = "version" if "ExecutedVersion" in dimensions else "alias"
            metric = props["MetricName"] + (
                "/p99" if props.get("ExtendedStatistic") == "p99" else ""
            )
            seen.add((scope, metric))
        else:
            assert props["Namespace"] == "AWS/ApiGateway"
            seen.add(("api", props["MetricName"]))
    assert seen == {
        ("alias", "Errors"),
        ("alias", "Throttles"),
        ("alias", "Duration/p99"),
        ("version", "Errors"),
        ("version", "Throttles"),
        ("version", "Duration/p99"),
        ("api", "5XXError"),
    }
    thresholds = {
        a["Properties"]["MetricName"]: a["Properties"]["Threshold"] for a in alarms.values()
    }
    assert thresholds["Duration"] == dev.config.alarms.p99_latency_ms


def test_alarm_topic_is_encrypted_and_tls_only(dev: Synthesized, cognito: Synthesized) -> None:
    (topic,) = _resources(dev, "serving", "AWS::SNS::Topic").values()
    key_ref = json.dumps(topic["Properties"]["KmsMasterKeyId"])
    assert "AlarmTopicKey" in key_ref  # customer-managed: CloudWatch needs the key policy
    (key,) = _resources(dev, "serving", "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    cloudwatch = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch and set(cloudwatch[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    (policy,) = _resources(dev, "serving", "AWS::SNS::TopicPolicy").values()
    deny, allow = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # CloudWatch alarms publish as the service: allowed, for this account's alarms only.
    assert allow["Effect"] == "Allow" and allow["Action"] == "sns:Publish"
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    dev.template("serving").resource_count_is("AWS::SNS::Subscription", 0)
    cognito.template("serving").has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ml@example.com"}
    )


@pytest.mark.parametrize("kind", ["serving", "training"])
def test_every_log_group_has_retention_and_the_stage_logs_key(dev: Synthesized, kind: str) -> None:
    """The predict function's log group holds every capture record until Firehose ships it."""
    groups = _resources(dev, kind, "AWS::Logs::LogGroup")
    assert groups
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == dev.config.log_retention_days
        assert "GetAttLogsKey" in group["Properties"]["KmsKeyId"]["Fn::ImportValue"]


def test_outputs_expose_what_operators_need(dev: Synthesized) -> None:
    dev.template("serving").has_output("ApiUrl", {"Value": Match.any_value()})
    dev.template("serving").has_output("AlarmTopicArn", {"Value": Match.any_value()})
