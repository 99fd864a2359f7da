"""``--backend aws`` finds a model's deployed function by the serving stack's names and tags
(``$LAMBDASERVE_STAGE`` with the model's name), against moto's server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lambdaserve.aws.clients import aws_client
from lambdaserve.aws.stage_functions import MODEL_TAG, StageFunctionError, stage_function
from lambdaserve.cli.main import app
from lambdaserve.local.artifact_store import LocalArtifactStore
from tests.integration.moto_server import handler_zip, lambda_role, running_moto_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployed() -> Iterator[dict[str, Any]]:
    """Stage ``many`` (models churn and fraud) and stage ``solo`` (its single model churn)."""
    with running_moto_server() as endpoint:
        lam = aws_client("lambda", endpoint_url=endpoint)
        role = lambda_role(aws_client("iam", endpoint_url=endpoint), f"r-{uuid.uuid4().hex[:6]}")
        stage = uuid.uuid4().hex[:6]
        functions = {
            f"lambdaserve-many{stage}-predict-churn": "churn",
            f"lambdaserve-many{stage}-predict-fraud": "fraud",
            f"lambdaserve-solo{stage}-predict": "churn",
        }
        for name, model in functions.items():
            lam.create_function(
                FunctionName=name,
                Runtime="python3.13",
                Role=role,
                Handler="handler.lambda_handler",
                Code={"ZipFile": handler_zip()},
                Tags={MODEL_TAG: model, "project": "lambdaserve"},
            )
        yield {"endpoint": endpoint, "lambda": lam, "many": f"many{stage}", "solo": f"solo{stage}"}


def test_a_model_of_a_models_stage_is_its_own_function(deployed: dict[str, Any]) -> None:
    many, lam = deployed["many"], deployed["lambda"]
    assert stage_function(many, "churn", client=lam) == f"lambdaserve-{many}-predict-churn"
    assert stage_function(many, "fraud", client=lam) == f"lambdaserve-{many}-predict-fraud"
    with pytest.raises(StageFunctionError, match=f"stage '{many}' has no function for model 'x'"):
        stage_function(many, "x", client=lam)


def test_a_single_model_stage_serves_only_the_model_its_tag_names(
    deployed: dict[str, Any],
) -> None:
    solo, lam = deployed["solo"], deployed["lambda"]
    assert stage_function(solo, "churn", client=lam) == f"lambdaserve-{solo}-predict"
    with pytest.raises(StageFunctionError, match="serves model 'churn', not 'fraud'"):
        stage_function(solo, "fraud", client=lam)


def test_the_cli_acts_on_the_models_function_of_the_stage(
    deployed: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", deployed["endpoint"])
    monkeypatch.setenv("LAMBDASERVE_STAGE", deployed["many"])
    monkeypatch.delenv("LAMBDASERVE_FUNCTION", raising=False)
    store = LocalArtifactStore(tmp_path / "store").root
    runner = CliRunner()

    fraud = runner.invoke(app, ["status", "fraud", "--store", str(store), "--backend", "aws"])
    unknown = runner.invoke(app, ["status", "nope", "--store", str(store), "--backend", "aws"])

    # the function's live alias is read (none yet: the stage was just deployed)
    assert f"lambdaserve-{deployed['many']}-predict-fraud" in " ".join(fraud.output.split())
    assert unknown.exit_code == 2
    assert "has no function for model 'nope'" in " ".join(unknown.output.split())
