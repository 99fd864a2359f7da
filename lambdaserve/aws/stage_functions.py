"""Which deployed predict function serves a model of a stage, found by the names and tags the
serving stack gives them: ``lambdaserve-<stage>-predict-<model>`` for a model of the stage's
``models`` mapping, ``lambdaserve-<stage>-predict`` for a stage's single model; each carries
the tag ``lambdaserve:model`` naming its model (``infra/constructs/predict_function.py``)."""

from __future__ import annotations

from typing import Any

from lambdaserve.aws.clients import aws_client, error_code
from lambdaserve.kernel.errors import LambdaserveError

MODEL_TAG = "lambdaserve:model"


class StageFunctionError(LambdaserveError):
    """No function of the stage serves the model, or AWS could not say."""


def stage_function(stage: str, model: str, *, client: Any | None = None) -> str:
    """The name of the function of ``stage`` that serves ``model``: its own under ``models``,
    else the stage's single one when its tag names ``model``."""
    from botocore.exceptions import BotoCoreError, ClientError

    lam = client if client is not None else aws_client("lambda")
    prefix = f"lambdaserve-{stage}-predict"
    tried = []
    for name in (f"{prefix}-{model}", prefix):
        tried.append(name)
        try:
            arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
            serves = lam.list_tags(Resource=arn).get("Tags", {}).get(MODEL_TAG)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                continue
            raise StageFunctionError(f"could not look up {name}: {error_code(exc) or exc}") from exc
        except BotoCoreError as exc:
            raise StageFunctionError(f"could not look up {name}: {exc}") from exc
        if serves == model:
            return name
        raise StageFunctionError(
            f"{name} serves model {serves!r}, not {model!r}: stage {stage!r} does not deploy "
            f"{model!r} (add it to the stage's models)"
        )
    raise StageFunctionError(
        f"stage {stage!r} has no function for model {model!r} (tried {', '.join(tried)}): "
        "is the stage deployed, and the model in its configuration?"
    )
