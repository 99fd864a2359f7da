"""A stage with ``models``: a predict function, alias, alarms, role, capture stream and drift
schedule per model, one API with routes per model, one rollout machine and drift function
taking the model as input. (cdk-nag, cfn-lint and checkov run on it with the other stages.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import StageConfig, StageConfigError, load_stage_config
from infra.constructs import predict_function
from infra.constructs.capture_pipeline import capture_prefix
from lambdaserve.aws.stage_functions import MODEL_TAG
from lambdaserve.kernel.capture import model_prefix
from lambdaserve.kernel.metric_names import EMITTED
from lambdaserve.serving.settings import ServingSettings
from lambdaserve.wiring.aws_rollout import RolloutSettings
from tests.infra.conftest import MODELS_STAGE, Synthesized
from tests.support.settings_contract import settings_from
from tests.support.template_metrics import dashboard_bodies, dashboard_metrics

pytestmark = pytest.mark.infra

MODELS = ("churn", "demand", "fraud")


def _of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == type_}


def _model_id(name: str) -> str:
    return f"Model{name.capitalize()}"


def _predict_functions(many: Synthesized) -> dict[str, dict[str, Any]]:
    functions = _of_type(many.template_json("serving"), "AWS::Lambda::Function")
    return {
        name: next(r for k, r in functions.items() if k.startswith(f"{_model_id(name)}Predict"))
        for name in MODELS
    }


def test_every_model_gets_its_own_function_with_the_settings_it_inherits_or_sets(
    many: Synthesized,
) -> None:
    functions = _predict_functions(many)
    assert len(_of_type(many.template_json("serving"), "AWS::Lambda::Function")) == 4  # + rollout
    props = {name: f["Properties"] for name, f in functions.items()}
    assert {n: p["FunctionName"] for n, p in props.items()} == {
        n: f"lambdaserve-many-predict-{n}" for n in MODELS
    }
    assert props["churn"]["MemorySize"] == 1024 and props["fraud"]["MemorySize"] == 2048
    assert props["churn"]["ReservedConcurrentExecutions"] == 20
    assert props["fraud"]["ReservedConcurrentExecutions"] == 5
    # SnapStart where the model asked for it: every published version is snapshotted
    assert props["fraud"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert "SnapStart" not in props["churn"] and "SnapStart" not in props["demand"]
    env = {n: p["Environment"]["Variables"] for n, p in props.items()}
    assert env["churn"]["PREFERRED_RUNTIME"] == "onnx"
    assert env["fraud"]["PREFERRED_RUNTIME"] == "sklearn"
    assert env["fraud"]["MODEL_URI"] == "s3://bucket/models/fraud/7/bundle.tar.gz"
    assert "MODEL_URI" not in env["churn"]
    assert [env[n]["API_BASE_PATH"] for n in MODELS] == [f"/models/{n}" for n in MODELS]
    assert [env[n]["CAPTURE_ENABLED"] for n in MODELS] == ["true", "false", "true"]
    # what `--backend aws` finds a model's function by (lambdaserve.aws.stage_functions)
    assert predict_function.MODEL_TAG == MODEL_TAG
    for name in MODELS:
        assert {"Key": MODEL_TAG, "Value": name} in props[name]["Tags"]
    layers = _of_type(many.template_json("serving"), "AWS::Lambda::LayerVersion")
    fraud_layer = next(r for k, r in layers.items() if k.startswith("ModelFraudServingLayer"))
    assert fraud_layer["Properties"]["Description"].startswith("lambdaserve sklearn")


def test_the_settings_model_accepts_each_models_environment(
    many: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, function in _predict_functions(many).items():
        variables = {
            k: v if isinstance(v, str) else "arn:aws:secretsmanager:us-east-1:1:secret:s"
            for k, v in function["Properties"]["Environment"]["Variables"].items()
        }
        settings = settings_from(ServingSettings, variables, monkeypatch)
        assert settings.api_base_path == f"/models/{name}"


def test_each_model_has_a_live_alias_on_its_own_bootstrap_version(many: Synthesized) -> None:
    template = many.template_json("serving")
    aliases = _of_type(template, "AWS::Lambda::Alias")
    versions = _of_type(template, "AWS::Lambda::Version")
    assert len(aliases) == len(versions) == len(MODELS)
    for name in MODELS:
        (alias_id,) = [k for k in aliases if k.startswith(f"{_model_id(name)}Live")]
        alias = aliases[alias_id]["Properties"]
        assert alias["Name"] == "live"
        assert alias["FunctionName"]["Ref"].startswith(f"{_model_id(name)}Predict")
        version_id = alias["FunctionVersion"]["Fn::GetAtt"][0]
        assert version_id.startswith(f"{_model_id(name)}BootstrapVersion")
        assert versions[version_id]["DeletionPolicy"] == "Retain"


def _resource_paths(template: dict[str, Any]) -> dict[str, str]:
    """Logical ID of every API resource -> its full path."""
    resources = _of_type(template, "AWS::ApiGateway::Resource")

    def path(logical_id: str) -> str:
        props = resources[logical_id]["Properties"]
        parent = props["ParentId"]
        above = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{above}/{props['PathPart']}"

    return {logical_id: path(logical_id) for logical_id in resources}


def test_the_api_routes_each_model_to_its_own_alias(many: Synthesized) -> None:
    template = many.template_json("serving")
    paths = _resource_paths(template)
    routed: dict[str, str] = {}
    for method in _of_type(template, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        if props["HttpMethod"] == "OPTIONS":
            continue
        uri = json.dumps(props["Integration"]["Uri"])
        (target,) = {n for n in MODELS if f'"{_model_id(n)}Live' in uri}
        route = f"{props['HttpMethod']} {paths[props['ResourceId']['Ref']]}"
        routed[route] = target
        assert props["AuthorizationType"] == "AWS_IAM" and props["RequestValidatorId"]
    expected = {
        f"{method} /models/{name}/{route}": name
        for name in MODELS
        for route, method in (
            ("predict", "POST"),
            ("predict/batch", "POST"),
            ("feedback", "POST"),
            ("health", "GET"),
            ("model", "GET"),
            ("docs", "GET"),
            ("openapi.json", "GET"),
        )
    }
    assert routed == expected  # and no unprefixed route


def _statements(template: dict[str, Any], policy_prefix: str) -> list[dict[str, Any]]:
    policies = _of_type(template, "AWS::IAM::Policy")
    (policy,) = [r for k, r in policies.items() if k.startswith(policy_prefix)]
    return policy["Properties"]["PolicyDocument"]["Statement"]  # type: ignore[no-any-return]


def test_each_models_role_reads_only_its_own_bundles(many: Synthesized) -> None:
    template = many.template_json("serving")
    for name in MODELS:
        statements = _statements(template, f"{_model_id(name)}PredictRoleDefaultPolicy")
        (s3_read,) = [s for s in statements if "s3:GetObject" in s["Action"]]
        assert json.dumps(s3_read["Resource"]).count("/models/") == 1
        assert f'/models/{name}/*"' in json.dumps(s3_read["Resource"])
        assert not any("s3:PutObject" in json.dumps(s["Action"]) for s in statements)
        roles = [
            r
            for k, r in _of_type(template, "AWS::Lambda::Function").items()
            if k.startswith(f"{_model_id(name)}Predict")
        ]
        assert roles[0]["Properties"]["Role"]["Fn::GetAtt"][0].startswith(
            f"{_model_id(name)}PredictRole"
        )


def test_alarms_per_model_watch_its_alias_its_versions_and_its_routes(many: Synthesized) -> None:
    template = many.template_json("serving")
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    for name in MODELS:
        own = {k: r["Properties"] for k, r in alarms.items() if k.startswith(_model_id(name))}
        kinds = {k[len(_model_id(name)) + len("Guards") : -8] for k in own}  # 8-digit hash
        assert kinds == {
            "AliasErrors",
            "AliasThrottles",
            "AliasLatencyP99",
            "Api5xx",
            "VersionBootstrapErrors",
            "VersionBootstrapThrottles",
            "VersionBootstrapLatencyP99",
        }
        errors = next(p for k, p in own.items() if "AliasErrors" in k)
        assert errors["Threshold"] == (2 if name == "fraud" else 5)
        (api,) = [p for k, p in own.items() if "Api5xx" in k]
        resources = {
            d["Value"]
            for m in api["Metrics"]
            if "MetricStat" in m
            for d in m["MetricStat"]["Metric"]["Dimensions"]
            if d["Name"] == "Resource"
        }
        assert resources == {
            f"/models/{name}/{route}"
            for route in ("predict", "predict/batch", "feedback", "health", "model")
        } | {f"/models/{name}/docs", f"/models/{name}/openapi.json"}


def test_one_rollout_function_moves_each_models_alias_under_its_guards(
    many: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = many.template_json("serving")
    functions = _of_type(template, "AWS::Lambda::Function")
    (rollout,) = [r for k, r in functions.items() if k.startswith("RolloutFunction")]
    variables = rollout["Properties"]["Environment"]["Variables"]
    targets = json.dumps(variables["MODEL_TARGETS"])
    for name in MODELS:
        assert f'\\"{name}\\": {{\\"function_name\\": \\"' in targets
        assert f"{_model_id(name)}GuardsApi5xx" in targets
    resolved = {
        "MODEL_TARGETS": json.dumps(
            {n: {"function_name": f"lambdaserve-many-predict-{n}"} for n in MODELS}
        ),
        "STATE_BUCKET": "artifacts",
    }
    settings = settings_from(RolloutSettings, resolved, monkeypatch)
    assert sorted(settings.model_targets) == list(MODELS)
    statements = _statements(template, "RolloutRoleDefaultPolicy")
    (alias_actions,) = [s for s in statements if "lambda:UpdateAlias" in s["Action"]]
    assert sorted(r["Fn::GetAtt"][0][: len("ModelChurnPredict")] for r in alias_actions["Resource"])
    assert len(alias_actions["Resource"]) == len(MODELS)
    machines = _of_type(template, "AWS::StepFunctions::StateMachine")
    assert len(machines) == 1


def test_each_capturing_model_has_its_own_stream_into_its_partition(many: Synthesized) -> None:
    template = many.template_json("monitoring")
    streams = _of_type(template, "AWS::KinesisFirehose::DeliveryStream")
    prefixes = {
        r["Properties"]["DeliveryStreamName"]: r["Properties"][
            "ExtendedS3DestinationConfiguration"
        ]["Prefix"]
        for r in streams.values()
    }
    assert prefixes == {
        "lambdaserve-many-capture-churn": capture_prefix("churn"),
        "lambdaserve-many-capture-fraud": capture_prefix("fraud"),
    }  # demand captures nothing
    # the runtime's partitions (lambdaserve.kernel.capture), as Firehose writes them
    assert capture_prefix("churn") == f"{model_prefix('churn').rstrip('/')}/" + (
        "dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"
    )
    filters = _of_type(template, "AWS::Logs::SubscriptionFilter")
    sources = sorted(json.dumps(f["Properties"]["LogGroupName"]) for f in filters.values())
    assert len(sources) == 2
    assert "ModelChurnPredictLogs" in sources[0] and "ModelFraudPredictLogs" in sources[1]
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    freshness = [k for k in alarms if "Freshness" in k]
    assert len(freshness) == 2
    # a heartbeat per judged model, each on its own model's series
    beats = [r["Properties"] for k, r in alarms.items() if k.startswith("DriftHeartbeat")]
    assert sorted(
        d["Value"] for b in beats for d in b["Dimensions"] if d["Name"] == "model_name"
    ) == ["churn", "fraud"]


def test_one_drift_function_with_a_schedule_per_capturing_model(many: Synthesized) -> None:
    template = many.template_json("monitoring")
    functions = _of_type(template, "AWS::Lambda::Function")
    assert len(functions) == 1
    schedules = _of_type(template, "AWS::Scheduler::Schedule")
    inputs = {
        r["Properties"]["Name"]: json.loads(r["Properties"]["Target"]["Input"])
        for r in schedules.values()
    }
    assert inputs == {
        f"lambdaserve-many-drift-{n}": {
            "time": "<aws.scheduler.scheduled-time>",
            "model_name": n,
        }
        for n in ("churn", "fraud")
    }
    statements = json.dumps(_statements(template, "DriftRoleDefaultPolicy"))
    for name in ("churn", "fraud"):
        for prefix in (f"/models/{name}/*", f"/drift-reports/{name}/*", f"captures/model={name}/*"):
            assert prefix in statements
    assert "models/demand/" not in statements and "captures/*" not in statements


def _config(stage: dict[str, Any]) -> StageConfig:
    return load_stage_config({"lambdaserve:stages": {"many": stage}}, "many")


def test_models_inherit_the_stage_defaults_and_keep_what_they_set() -> None:
    config = _config(MODELS_STAGE)
    by_name = {m.name: m for m in config.served_models}
    assert list(by_name) == sorted(MODELS)
    assert by_name["churn"].alarms.p99_latency_ms == 500  # the stage's
    assert by_name["fraud"].alarms.p99_latency_ms == 1000  # its own thresholds, defaults inside
    assert by_name["fraud"].reserved_concurrency == 5
    assert by_name["churn"].reserved_concurrency == 20
    # A setting given, even null, is the model's own (CDK context drops nulls, so this is
    # reachable from a config file read directly, not through `cdk synth -c`).
    unreserved = {**MODELS_STAGE, "models": {"churn": {"reserved_concurrency": None}}}
    assert _config(unreserved).served_models[0].reserved_concurrency is None
    assert all(m.prefixed for m in config.served_models)


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ({"Churn": {}}, "model name 'Churn' under models must be lower-case"),
        ({"churn.v2": {}}, "model name 'churn.v2' under models"),
        ({"churn-": {}}, "model name 'churn-' under models"),
        ({"a" * 40: {}}, "names of stage 'lambdaserve-many' have at most 39"),
        ({"churn": {"runtime": "tensorflow"}}, "models.churn.runtime: Input should be"),
        ({"churn": {"dataframe_inputs": True}}, "models.churn: .*dataframe_inputs needs"),
        (
            {
                "churn": {
                    "model_uri": "s3://bucket/models/fraud/1/bundle.tar.gz",
                    "model_sha256": "a" * 64,
                }
            },
            "models.churn: .*model_uri names model 'fraud', not 'churn'",
        ),
        ({"churn": {"memory": 512}}, "models.churn.memory: Extra inputs"),
    ],
)
def test_a_bad_model_stops_synthesis_naming_it(models: dict[str, Any], message: str) -> None:
    with pytest.raises(StageConfigError, match=message):
        _config({"models": models})


def test_a_stage_names_its_model_one_way() -> None:
    with pytest.raises(StageConfigError, match="with models, set each model's model_uri"):
        _config({"model_name": "churn", "models": {"fraud": {}}})
    with pytest.raises(StageConfigError, match="name the model this stage serves"):
        _config({})
    single = _config({"model_name": "Churn.v2"}).served_models
    assert [(m.name, m.prefixed, m.function_name) for m in single] == [
        ("Churn.v2", False, "lambdaserve-many-predict")
    ]


#: The AWS metrics a model's dashboard draws besides ours (namespace, name).
AWS_METRICS = {
    ("AWS/Lambda", "Invocations"),
    ("AWS/Lambda", "Duration"),
    ("AWS/Lambda", "Errors"),
    ("AWS/ApiGateway", "5XXError"),
    ("AWS/Firehose", "DeliveryToS3.DataFreshness"),
}


def test_each_model_has_a_dashboard_of_metrics_some_function_emits(many: Synthesized) -> None:
    template = many.template_json("serving")
    dashboards = _of_type(template, "AWS::CloudWatch::Dashboard")
    names = sorted(r["Properties"]["DashboardName"] for r in dashboards.values())
    assert names == [f"lambdaserve-many-{n}" for n in MODELS]
    drawn = dashboard_metrics(template)
    ours = {name for namespace, name in drawn if namespace == "lambdaserve"}
    assert ours <= EMITTED, sorted(ours - EMITTED)
    assert {"ClientErrors", "ServerErrors", "MeanScore", "DatasetDrift", "DriftJobRuns"} <= ours
    assert {pair for pair in drawn if pair[0] != "lambdaserve"} == AWS_METRICS
    for body in dashboard_bodies(template):
        titles = {w["properties"].get("title") for w in body["widgets"]}
        assert "Requests per executed version (the split)" in titles
        assert "Alarms" in titles
        # the guard's thresholds are drawn where its signals are
        annotated = [
            w for w in body["widgets"] if w["properties"].get("annotations", {}).get("horizontal")
        ]
        assert len(annotated) >= 3
