"""Unattended rollouts: the state machine's loop, the rollout function, its role and its code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_

import infra.assets as assets
import layers.build_layer as build
from infra.constructs import rollout_machine
from lambdaserve.rollout.lambda_step import RetryableStepError
from lambdaserve.wiring.aws_rollout import RolloutSettings
from layers.function_asset import build_rollout_asset
from tests.infra.conftest import Synthesized
from tests.support.imports import unresolved_first_party_imports
from tests.support.settings_contract import (
    POWERTOOLS_LOGGER,
    assert_environment_is_the_settings,
    settings_from,
)

pytestmark = pytest.mark.infra
ROLLOUT_ARN = "<rollout function ARN>"
SEVEN_DAYS = 7 * 24 * 3600


def _resources(synth: Synthesized, type_: str) -> dict[str, dict[str, Any]]:
    resources = synth.template_json("serving")["Resources"]
    return {k: v for k, v in resources.items() if v["Type"] == type_}


def _logical_id(synth: Synthesized, type_: str, prefix: str) -> str:
    (found,) = [k for k in _resources(synth, type_) if k.startswith(prefix)]
    return found


def _rollout_function(synth: Synthesized) -> tuple[str, dict[str, Any]]:
    functions = _resources(synth, "AWS::Lambda::Function")
    (item,) = [(k, v) for k, v in functions.items() if k.startswith("RolloutFunction")]
    return item


def _machine(synth: Synthesized) -> dict[str, Any]:
    machines = _resources(synth, "AWS::StepFunctions::StateMachine")
    (machine,) = [v for k, v in machines.items() if k.startswith("RolloutMachine")]
    return machine["Properties"]  # type: ignore[no-any-return]


def _definition(synth: Synthesized) -> dict[str, Any]:
    """The definition with the one token in it (the rollout function's ARN) made readable."""
    function_id, _ = _rollout_function(synth)
    parts = _machine(synth)["DefinitionString"]["Fn::Join"][1]
    tokens = [p for p in parts if not isinstance(p, str)]
    assert tokens and all(t == {"Fn::GetAtt": [function_id, "Arn"]} for t in tokens)
    text = "".join(p if isinstance(p, str) else ROLLOUT_ARN for p in parts)
    return json.loads(text)  # type: ignore[no-any-return]


def _statements(
    synth: Synthesized, policy_prefix: str, conditioned: frozenset[str] = frozenset()
) -> dict[str, list[Any]]:
    """Action -> the resources of every statement that allows it (only ``conditioned``
    actions may carry a condition; see _conditions)."""
    policies = _resources(synth, "AWS::IAM::Policy")
    (policy,) = [v for k, v in policies.items() if k.startswith(policy_prefix)]
    by_action: dict[str, list[Any]] = {}
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        if "Condition" in statement:
            assert set(actions if isinstance(actions, list) else [actions]) <= conditioned
        for action in actions if isinstance(actions, list) else [actions]:
            resources = statement["Resource"]
            by_action.setdefault(action, []).extend(
                resources if isinstance(resources, list) else [resources]
            )
    return by_action


def test_the_machine_steps_waits_and_steps_again_until_finished(dev: Synthesized) -> None:
    definition = _definition(dev)
    states = definition["States"]
    assert definition["StartAt"] == "Step"
    assert definition["TimeoutSeconds"] == SEVEN_DAYS

    step = states["Step"]
    assert step["Type"] == "Task"
    assert step["Resource"] == ROLLOUT_ARN  # payload_response_only: the function's output is all
    assert step["Parameters"] == {"model_name.$": "$.model_name"}
    assert step["Next"] == "Finished?"

    finished = states["Finished?"]
    assert finished["Type"] == "Choice"
    assert finished["Choices"] == [
        {"Variable": "$.finished", "BooleanEquals": True, "Next": "Outcome"}
    ]
    assert finished["Default"] == "Wait"
    assert states["Wait"] == {"Type": "Wait", "SecondsPath": "$.wait_seconds", "Next": "Step"}


def test_a_finished_rollout_ends_by_its_status(dev: Synthesized) -> None:
    states = _definition(dev)["States"]
    outcome = states["Outcome"]
    assert outcome["Type"] == "Choice"
    by_status = {c["StringEquals"]: c["Next"] for c in outcome["Choices"]}
    assert all(c["Variable"] == "$.status" for c in outcome["Choices"])
    # An A/B split on hold is not finished (the step says so): it keeps waiting and stepping,
    # so its guards keep being evaluated until `ab stop`.
    assert by_status == {"promoted": "Promoted", "rolled_back": "RolledBack", "aborted": "Aborted"}
    assert outcome["Default"] == "StepFailed"  # status "error" (or anything unforeseen)
    assert states["Promoted"]["Type"] == "Succeed"
    for name, error in (
        ("RolledBack", "RolledBack"),
        ("Aborted", "Aborted"),
        ("StepFailed", "RolloutStepFailed"),
    ):
        assert states[name] == {"Type": "Fail", "Error": error, "CausePath": "$.reason"}


def test_every_state_is_reachable_and_every_path_ends(dev: Synthesized) -> None:
    states = _definition(dev)["States"]

    def targets(state: dict[str, Any]) -> set[str]:
        found = {state["Next"]} if "Next" in state else set()
        found |= {c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])}
        return found | ({state["Default"]} if "Default" in state else set())

    seen, pending = set(), ["Step"]
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending += sorted(targets(states[name]))
    assert seen == set(states)
    ends = {name for name, state in states.items() if not targets(state)}
    assert {states[name]["Type"] for name in ends} == {"Succeed", "Fail"}
    assert all(state.get("End") is None for state in states.values())  # no silent exits


def test_the_step_retries_lambda_service_errors_and_fails_loudly_otherwise(
    dev: Synthesized,
) -> None:
    step = _definition(dev)["States"]["Step"]
    retried = {error for retry in step["Retry"] for error in retry["ErrorEquals"]}
    assert {
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    } <= retried
    assert "States.ALL" not in retried and "States.TaskFailed" not in retried
    assert all(r["MaxAttempts"] >= 3 and r["BackoffRate"] >= 1 for r in step["Retry"])
    # The handler's transient failures (throttling, a 5xx, a lost race) are retried with
    # jittered backoff for minutes, not turned into the end of the rollout.
    (transient,) = [r for r in step["Retry"] if r["ErrorEquals"] == [RetryableStepError.__name__]]
    assert transient["JitterStrategy"] == "FULL" and transient["MaxDelaySeconds"] == 300
    waits = [min(10 * 2**n, 300) for n in range(transient["MaxAttempts"])]
    assert transient["IntervalSeconds"] == 10 and sum(waits) >= 600
    (catch,) = step["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"]
    assert _definition(dev)["States"][catch["Next"]]["Type"] == "Fail"


def test_failed_timed_out_and_aborted_executions_alarm_on_the_topic(dev: Synthesized) -> None:
    alarms = [
        a["Properties"]
        for a in _resources(dev, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == "AWS/States"
    ]
    machine_id = _logical_id(dev, "AWS::StepFunctions::StateMachine", "RolloutMachine")
    assert sorted(a["MetricName"] for a in alarms) == [
        "ExecutionsAborted",
        "ExecutionsFailed",
        "ExecutionsTimedOut",
    ]
    topic_id = _logical_id(dev, "AWS::SNS::Topic", "AlarmTopic")
    for alarm in alarms:
        assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": machine_id}}]
        assert (alarm["Statistic"], alarm["Threshold"], alarm["EvaluationPeriods"]) == ("Sum", 1, 1)
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_the_machine_logs_without_execution_data_and_traces(dev: Synthesized) -> None:
    props = _machine(dev)
    assert props["StateMachineName"] == "lambdaserve-dev-rollout"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
    (destination,) = props["LoggingConfiguration"]["Destinations"]
    log_group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert log_group.startswith("RolloutMachineLogs")


def test_the_machine_may_invoke_only_the_rollout_function(dev: Synthesized) -> None:
    function_id, _ = _rollout_function(dev)
    by_action = _statements(dev, "RolloutMachineRole")  # the role passed to the machine
    invoke = by_action.pop("lambda:InvokeFunction")
    assert {json.dumps(r) for r in invoke} == {
        json.dumps({"Fn::GetAtt": [function_id, "Arn"]}),
        json.dumps({"Fn::Join": ["", [{"Fn::GetAtt": [function_id, "Arn"]}, ":*"]]}),
    }
    assert all(a.startswith(("logs:", "xray:")) for a in by_action)  # logging and tracing


@pytest.mark.parametrize("name", ["dev", "cognito"])
def test_the_rollout_function_matches_predict(name: str, request: pytest.FixtureRequest) -> None:
    synth: Synthesized = request.getfixturevalue(name)
    _, function = _rollout_function(synth)
    props = function["Properties"]
    predict = _resources(synth, "AWS::Lambda::Function")[
        _logical_id(synth, "AWS::Lambda::Function", "Predict")
    ]["Properties"]
    assert props["FunctionName"] == f"{synth.config.prefix}-rollout"
    assert props["Runtime"] == predict["Runtime"] == "python3.13"
    assert props["Architectures"] == predict["Architectures"] == [synth.config.architecture]
    assert props["Handler"] == "functions.rollout.handler.lambda_handler"
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["Timeout"] == 60
    assert props["ReservedConcurrentExecutions"] == rollout_machine.RESERVED_CONCURRENCY
    assert props["LoggingConfig"]["LogGroup"]["Ref"].startswith("RolloutFunctionLogs")
    (layer,) = props["Layers"]
    assert layer["Ref"].startswith("RolloutLayer")  # serving-base only, not predict's layer
    rollout_layer = _resources(synth, "AWS::Lambda::LayerVersion")[layer["Ref"]]["Properties"]
    assert rollout_layer["CompatibleArchitectures"] == [synth.config.architecture]


def test_the_rollout_role_is_least_privilege(dev: Synthesized) -> None:
    role_id = _logical_id(dev, "AWS::IAM::Role", "RolloutRole")
    role = _resources(dev, "AWS::IAM::Role")[role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "lambda.amazonaws.com"
    }
    assert "ManagedPolicyArns" not in role
    predict_id = _logical_id(dev, "AWS::Lambda::Function", "Predict")
    statements = _statements(dev, "RolloutRole", frozenset({"cloudwatch:PutMetricAlarm"}))
    by_action = {k: [json.dumps(r) for r in v] for k, v in statements.items()}

    assert set(by_action) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "lambda:GetAlias",
        "lambda:UpdateAlias",
        "lambda:GetFunctionConfiguration",
        "lambda:ListVersionsByFunction",  # pruning (keep_versions, 5 by default)
        "lambda:DeleteFunction",
        "cloudwatch:PutMetricAlarm",
        "cloudwatch:DeleteAlarms",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:GetMetricStatistics",
        "s3:GetObject",
        "s3:PutObject",
    }
    # Lambda authorizes alias actions on the function's unqualified ARN (the Lambda developer
    # guide's "Resources and conditions for Lambda actions": GetAlias/UpdateAlias -> Function);
    # an alias-qualified ARN would deny every step. Only the predict function, never its own.
    predict_arn = json.dumps({"Fn::GetAtt": [predict_id, "Arn"]})
    for action in (
        "lambda:GetAlias",
        "lambda:UpdateAlias",
        "lambda:GetFunctionConfiguration",
        "lambda:ListVersionsByFunction",
    ):
        assert by_action[action] == [predict_arn]
    # a version is deleted by its qualified ARN (<function ARN>:<version>), never unqualified
    (versions,) = by_action["lambda:DeleteFunction"]
    assert json.loads(versions) == {"Fn::Join": ["", [{"Fn::GetAtt": [predict_id, "Arn"]}, ":*"]]}
    (alarms,) = by_action["cloudwatch:PutMetricAlarm"]
    assert ':alarm:", {"Ref": "' + predict_id + '"}, "-v*"' in alarms
    assert by_action["cloudwatch:DeleteAlarms"] == [alarms]  # the same <function>-v* names
    for action in ("cloudwatch:DescribeAlarms", "cloudwatch:GetMetricStatistics", "xray:"):
        for key in [a for a in by_action if a.startswith(action)]:
            assert by_action[key] == ['"*"']
    for action in ("s3:GetObject", "s3:PutObject"):
        (objects,) = by_action[action]
        assert objects.endswith('"/rollouts/*"]]}') and "Artifacts" in objects
    logs = by_action["logs:PutLogEvents"]
    assert logs and all("RolloutFunctionLogs" in r for r in logs)
    assert not any(a.endswith("*") for a in by_action)


def test_the_rollout_role_creates_only_guard_alarms_without_actions(dev: Synthesized) -> None:
    """The guard's alarms are read, never acted on: a PutMetricAlarm with any action (an SNS
    topic, an EC2 stop, a Systems Manager action) is not allowed, and only under the guard's
    name prefix (CloudWatchGuard.alarm_prefix: <function>-v<N>-)."""
    policies = _resources(dev, "AWS::IAM::Policy")
    (policy,) = [v for k, v in policies.items() if k.startswith("RolloutRole")]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (put,) = [s for s in statements if "cloudwatch:PutMetricAlarm" in json.dumps(s["Action"])]
    assert put["Action"] == "cloudwatch:PutMetricAlarm"
    assert put["Condition"] == {"Null": {"cloudwatch:AlarmActions": "true"}}
    (delete,) = [s for s in statements if "cloudwatch:DeleteAlarms" in json.dumps(s["Action"])]
    assert delete["Resource"] == put["Resource"]
    predict_id = _logical_id(dev, "AWS::Lambda::Function", "Predict")
    assert put["Resource"]["Fn::Join"][1][-2:] == [{"Ref": predict_id}, "-v*"]


@pytest.mark.parametrize(
    ("name", "kind", "role_prefix", "machine"),
    [
        ("dev", "serving", "RolloutMachineRole", "lambdaserve-dev-rollout"),
        ("cognito", "serving", "RolloutMachineRole", "lambdaserve-staging-rollout"),
        ("dev", "training", "TrainingPipelineRole", "lambdaserve-dev-training"),
    ],
)
def test_each_state_machine_role_trusts_only_its_own_machine(
    name: str, kind: str, role_prefix: str, machine: str, request: pytest.FixtureRequest
) -> None:
    synth: Synthesized = request.getfixturevalue(name)
    resources = synth.template_json(kind)["Resources"]
    roles = {k: v for k, v in resources.items() if v["Type"] == "AWS::IAM::Role"}
    (role_id,) = [k for k in roles if k.startswith(role_prefix)]
    (trust,) = roles[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "states.amazonaws.com"}
    account = synth.config.account
    account_ref: Any = account if account else {"Ref": "AWS::AccountId"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": account_ref}
    (source,) = trust["Condition"]["ArnEquals"].values()
    region = synth.config.region
    text = json.dumps(source)
    assert f"arn:aws:states:{region}:" in text
    assert text.replace('"]]}', "").strip('"').endswith(f":stateMachine:{machine}")
    assert "*" not in text  # one machine, not stateMachine:*
    machines = [k for k, v in resources.items() if v["Type"] == "AWS::StepFunctions::StateMachine"]
    (machine_id,) = machines
    props = resources[machine_id]["Properties"]
    assert props["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert props["StateMachineName"] == machine


def _environment(synth: Synthesized) -> dict[str, Any]:
    _, function = _rollout_function(synth)
    return function["Properties"]["Environment"]["Variables"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["dev", "cognito"])
def test_the_environment_is_exactly_the_settings_model(
    name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    synth: Synthesized = request.getfixturevalue(name)
    environment = _environment(synth)
    assert_environment_is_the_settings(environment, RolloutSettings, powertools=POWERTOOLS_LOGGER)
    predict_id = _logical_id(synth, "AWS::Lambda::Function", "Predict")
    assert "Artifacts" in environment["STATE_BUCKET"]["Fn::ImportValue"]
    # MODEL_TARGETS: the stage's one model, its function, and the stack's own guards of its
    # alias (alias errors, throttles, p99 and API 5XX), which roll a rollout back too; the
    # per-version alarms watch the bootstrap version, which never serves a challenger.
    parts = environment["MODEL_TARGETS"]["Fn::Join"][1]
    text = "".join(part if isinstance(part, str) else "<ref>" for part in parts)
    assert json.loads(text) == {
        "churn": {"function_name": "<ref>", "guard_alarm_names": ["<ref>"] * 4}
    }
    refs = [part["Ref"] for part in parts if isinstance(part, dict)]
    assert refs[0] == predict_id
    assert sorted(ref[:-8] for ref in refs[1:]) == [  # logical IDs end in an 8-digit hash
        "GuardsAliasErrors",
        "GuardsAliasLatencyP99",
        "GuardsAliasThrottles",
        "GuardsApi5xx",
    ]
    # the deployed values resolve to names; the model accepts them
    resolved = {
        **environment,
        "MODEL_TARGETS": json.dumps(
            {
                "churn": {
                    "function_name": f"{synth.config.prefix}-predict",
                    "guard_alarm_names": ["AliasErrors-1", "Api5xx-1"],
                }
            }
        ),
        "STATE_BUCKET": "lambdaserve-storage-artifacts82dd59a1-abc",
    }
    settings = settings_from(RolloutSettings, resolved, monkeypatch)
    assert (settings.alias_name, settings.state_prefix) == ("live", "rollouts/")
    assert settings.model_targets["churn"].guard_alarm_names == ("AliasErrors-1", "Api5xx-1")
    assert settings.keep_versions == synth.config.keep_versions == 5  # the stage's default


def test_operators_get_the_state_machine_arn(dev: Synthesized) -> None:
    outputs = dev.template_json("serving")["Outputs"]
    machine_id = _logical_id(dev, "AWS::StepFunctions::StateMachine", "RolloutMachine")
    assert outputs["RolloutStateMachineArn"]["Value"] == {"Ref": machine_id}


def test_the_rollout_asset_is_the_handlers_import_closure(tmp_path: Path) -> None:
    size = build_rollout_asset(tmp_path)
    files = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.py")}

    assert size < 1024 * 1024
    assert {
        "functions/rollout/handler.py",
        "lambdaserve/rollout/step.py",
        "lambdaserve/rollout/controller.py",
        "lambdaserve/aws/lambda_alias.py",
        "lambdaserve/aws/cloudwatch_guard.py",
        "lambdaserve/aws/s3_rollout_state.py",
    } <= files
    assert not any(f.startswith("functions/predict/") for f in files)
    for absent in ("serving/", "kernel/predictors.py", "kernel/bundle.py", "cli/", "registry/"):
        assert not any(f.startswith(f"lambdaserve/{absent}") for f in files), absent
    assert not unresolved_first_party_imports(tmp_path)
    assert (tmp_path / "functions" / "rollout" / "__pycache__").is_dir()


def test_the_handler_and_its_aws_adapters_import_from_the_asset_alone(tmp_path: Path) -> None:
    """Run from the asset directory (as /var/task), the handler builds its AWS ports."""
    build_rollout_asset(tmp_path / "task")
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from functions.rollout.handler import lambda_handler\n"
        "from lambdaserve.wiring.aws_rollout import RolloutSettings, rollout_ports\n"
        "import lambdaserve\n"
        "assert lambdaserve.__file__.startswith(sys.argv[1]), lambdaserve.__file__\n"
        "settings = RolloutSettings(model_targets={'churn': {'function_name': 'f'}}, "
        "state_bucket='bucket')\n"
        "ports = rollout_ports(settings, 'churn')\n"
        "print(type(ports.alias).__name__, type(ports.guard).__name__, "
        "type(ports.states).__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "task")],
        capture_output=True,
        text=True,
        check=False,
        env={"AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["LambdaAlias", "CloudWatchGuard", "S3RolloutState"]


def test_the_cli_builds_the_rollout_asset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build.main(["--function-asset", "--function", "rollout", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "functions" / "rollout" / "handler.py").is_file()
    assert not (tmp_path / "functions" / "predict").exists()
    assert "rollout function asset:" in capsys.readouterr().out


def test_each_asset_is_bundled_by_its_own_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CDK caches bundled output per source directory and bundling options within an app: the
    two functions (and the two layers) built from one directory must not share an output."""

    def record(command: Any, output_dir: str, *_options: Any, **_more: Any) -> bool:
        Path(output_dir, "built-by.txt").write_text(" ".join(command._args))
        return True

    monkeypatch.setattr(assets._Command, "try_bundle", record)
    stack = Stack(App(outdir=str(tmp_path)), "Assets")
    codes = {
        "PredictCode": assets.predict_function_code(),
        "RolloutCode": assets.rollout_function_code(),
        "PredictLayer": assets.layer_code(["serving-base", "onnx"], "arm64"),
        "RolloutLayer": assets.layer_code(["serving-base"], "arm64", function="rollout"),
    }
    for name, code in codes.items():
        lambda_.LayerVersion(stack, name, code=code)
    stack.node.root.synth()  # type: ignore[attr-defined]

    built = {p.read_text() for p in tmp_path.glob("asset.*/built-by.txt")}
    assert built == {
        "-m layers.build_layer --function-asset",
        "-m layers.build_layer --function-asset --function rollout",
        "-m layers.build_layer serving-base onnx --arch arm64 --combined",
        "-m layers.build_layer serving-base --arch arm64 --combined --function rollout",
    }
