"""Every metric of our namespace a synthesized template alarms on (or queries) is one that some
function emits: the names live in ``lambdaserve.kernel.metric_names``, which the emitters and the
rollout guard import and the stacks (which never import runtime code) are checked against."""

from __future__ import annotations

import json

import pytest

from lambdaserve.kernel.metric_names import EMITTED, NAMESPACE, DriftMetric, PredictMetric
from tests.infra.conftest import Synthesized
from tests.support.template_metrics import our_metrics

pytestmark = pytest.mark.infra


@pytest.mark.parametrize("name", ["dev", "cognito", "many"])
def test_every_metric_the_stacks_read_is_emitted(name: str, request: pytest.FixtureRequest) -> None:
    synth: Synthesized = request.getfixturevalue(name)
    read = set().union(*(our_metrics(json.loads(p.read_text())) for p in synth.template_paths))
    assert read, "the stacks alarm on our own metrics (drift heartbeat and drift per model)"
    assert read <= EMITTED, f"alarmed on but emitted by no function: {sorted(read - EMITTED)}"
    assert {DriftMetric.JOB_RUNS} <= read


def test_the_predict_functions_namespace_is_ours(dev: Synthesized) -> None:
    resources = dev.template_json("serving")["Resources"]
    (function,) = [
        r
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and k.startswith("Predict")
    ]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE


def test_a_name_no_function_emits_is_caught() -> None:
    """The check can fail: a template alarming on a misspelt metric is reported."""
    template = {
        "Resources": {
            "A": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {"Namespace": NAMESPACE, "MetricName": "ServerError"},
            },
            "B": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "Metrics": [
                        {"Expression": f'SELECT MAX(DriftRun) FROM SCHEMA("{NAMESPACE}", a)'}
                    ]
                },
            },
        }
    }
    assert our_metrics(template) - EMITTED == {"ServerError", "DriftRun"}
    assert PredictMetric.SERVER_ERRORS in EMITTED
