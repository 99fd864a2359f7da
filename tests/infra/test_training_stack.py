"""Training: a Step Functions state machine running a SageMaker training job in script mode."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.constructs.sklearn_image import image_repository_arn
from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.infra


def _resources(synth: Synthesized, type_: str) -> dict[str, dict[str, Any]]:
    resources = synth.template_json("training")["Resources"]
    return {k: v for k, v in resources.items() if v["Type"] == type_}


def _definition(synth: Synthesized) -> str:
    (machine,) = _resources(synth, "AWS::StepFunctions::StateMachine").values()
    return json.dumps(machine["Properties"]["DefinitionString"])


def test_state_machine_runs_a_sagemaker_training_job_to_completion(dev: Synthesized) -> None:
    definition = _definition(dev)
    assert ":states:::sagemaker:createTrainingJob.sync" in definition
    assert "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn" in definition
    assert '\\"sagemaker_program\\":\\"train.py\\"' in definition
    assert '\\"sagemaker_submit_directory\\":\\"' in definition
    assert '\\"S3Uri.$\\":\\"$.train_s3_uri\\"' in definition
    assert '\\"S3OutputPath\\":\\"s3://' in definition  # s3:// URIs, not https URLs
    assert "/training-output/" in definition
    assert '\\"TrainingFailed\\"' in definition  # a failed job fails the execution


def test_the_job_runs_with_network_isolation_its_code_arriving_as_a_channel(
    dev: Synthesized,
) -> None:
    """Code in the container reaches nothing (so it cannot write over another job's output
    with the role's credentials): the archive is the `code` channel, read from a local path."""
    (machine,) = _resources(dev, "AWS::StepFunctions::StateMachine").values()
    definition = json.loads(json.dumps(machine["Properties"]["DefinitionString"]))
    text = json.dumps(definition)
    assert '\\"EnableNetworkIsolation\\":true' in text
    assert '\\"ChannelName\\":\\"code\\"' in text
    assert '\\"sagemaker_submit_directory\\":\\"/opt/ml/input/data/code/' in text
    policies = _resources(dev, "AWS::IAM::Policy")
    policy = next(v for k, v in policies.items() if k.startswith("SageMakerRole"))
    lists = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "s3:ListBucket"
    ]
    assert len(lists) == 2 and all("Condition" in s for s in lists)
    (code,) = [s for s in lists if "StringEquals" in s["Condition"]]
    assert "cdk-hnb659fds-assets" in json.dumps(code["Resource"])
    (key,) = code["Condition"]["StringEquals"]["s3:prefix"]
    assert "/" not in key and key.split(".")[0] in json.dumps(definition)  # the archive itself


def test_state_machine_logs_and_traces(dev: Synthesized) -> None:
    (machine,) = _resources(dev, "AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False


def test_sagemaker_role_reads_only_datasets_and_code_and_writes_only_output(
    dev: Synthesized,
) -> None:
    policies = _resources(dev, "AWS::IAM::Policy")
    policy = next(v for k, v in policies.items() if k.startswith("SageMakerRole"))
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    by_action: dict[str, list[str]] = {}
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        for action in actions:
            by_action.setdefault(action, []).append(json.dumps(statement["Resource"]))
    s3_actions = {a for a in by_action if a.startswith("s3:")}
    assert s3_actions == {"s3:GetObject", "s3:ListBucket", "s3:PutObject"}
    (get,) = by_action["s3:GetObject"]
    assert "/datasets/*" in get and "cdk-hnb659fds-assets" in get and '"*"' not in get
    (put,) = by_action["s3:PutObject"]
    assert put.endswith('"/training-output/*"]]}')
    assert by_action["ecr:GetAuthorizationToken"] == ['"*"']
    (pull,) = by_action["ecr:BatchGetImage"]
    assert pull == '"arn:aws:ecr:us-east-1:683313688378:repository/sagemaker-scikit-learn"'
    assert all(statement["Effect"] == "Allow" for statement in statements)
    assert not any(a.endswith("*") for a in by_action)


def test_custom_image_uri_is_used_and_scoped(cognito: Synthesized) -> None:
    definition = _definition(cognito)
    assert "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn" in definition
    assert image_repository_arn("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/train:1") == (
        "arn:aws:ecr:eu-west-1:123456789012:repository/team/train"
    )
