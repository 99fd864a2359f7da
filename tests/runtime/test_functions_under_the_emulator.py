"""Every function of ours answering its events as Lambda runs it: the built asset as a read-only
task root, the built layers, Lambda's runtime interface client, the environment Lambda sets, the
emulator's invoke API. A module the asset forgot, a write outside /tmp or a wrong handler path
fails here before a user's first deploy."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdaserve.aws.clients import aws_client
from lambdaserve.kernel.bundle import VerifiedBundle, pack_bundle
from lambdaserve.serving.settings import ServingSettings
from lambdaserve.wiring.aws_predict import build_lambda_handler
from tests.integration.moto_server import new_bucket, running_moto_server
from tests.runtime.conftest import Emulate
from tests.support.events import make_event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.lambda_runtime import EmulatedFunction

PREDICT_HANDLER = "functions.predict.handler.lambda_handler"
ROLLOUT_HANDLER = "functions.rollout.handler.lambda_handler"
DRIFT_HANDLER = "functions.drift.handler.lambda_handler"
PREDICT_LAYERS = ("serving-base", "onnx")


@pytest.fixture(scope="module")
def predict(
    emulate: Emulate, churn_bundle: VerifiedBundle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmulatedFunction]:
    cache = tmp_path_factory.mktemp("predict-tmp")
    with emulate(
        "predict",
        PREDICT_LAYERS,
        PREDICT_HANDLER,
        {
            "MODEL_URI": churn_bundle.path.as_uri(),
            "MODEL_SHA256": churn_bundle.digest,
            "BUNDLE_CACHE_DIR": str(cache / "bundles"),
            "CAPTURE_ENABLED": "true",
            "PREFERRED_RUNTIME": "onnx",
            "POWERTOOLS_SERVICE_NAME": "lambdaserve-predict",
            "POWERTOOLS_METRICS_NAMESPACE": "lambdaserve",
        },
        name="lambdaserve-dev-predict",
    ) as function:
        yield function


def test_every_api_event_is_answered_by_the_built_predict_function(
    predict: EmulatedFunction, traffic_rows: list[dict[str, Any]]
) -> None:
    row = traffic_rows[0]
    events = {
        "rest_api_get_health": None,
        "http_api_get_health": None,
        "rest_api_get_model": None,
        "rest_api_post_predict": {"features": row},
        "http_api_post_predict": {"features": row},
        "rest_api_post_predict_batch": {"instances": traffic_rows[:20]},
        "http_api_post_predict_batch": {"instances": traffic_rows[:20]},
    }
    answers = {name: predict.invoke(make_event(name, body)) for name, body in events.items()}

    for name, answer in answers.items():
        assert answer.status == "success", name
        assert answer.payload["statusCode"] == 200, (name, answer.payload)
    assert predict.init_ms > 0
    health = json.loads(answers["rest_api_get_health"].payload["body"])
    assert health["status"] == "ok" and health["runtime"] == "onnx"
    batch = json.loads(answers["rest_api_post_predict_batch"].payload["body"])
    assert len(batch["predictions"]) == 20
    # the capture line the subscription filter selects, printed by the real runtime's stdout
    assert '{"lambdaserve_capture":1,' in predict.log()


def test_the_emulated_function_answers_what_the_in_process_handler_answers(
    predict: EmulatedFunction,
    churn_bundle: VerifiedBundle,
    traffic_rows: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    in_process = build_lambda_handler(
        ServingSettings(model_uri=churn_bundle.path.as_uri(), bundle_cache_dir=tmp_path)
    )
    for row in traffic_rows[:10]:
        event = make_event("rest_api_post_predict", {"features": row})
        emulated = json.loads(predict.invoke(event).payload["body"])
        local = json.loads(in_process(event, FakeLambdaContext())["body"])
        assert emulated["probability"] == local["probability"]
        assert emulated["label"] == local["label"]


def test_feedback_round_trips_through_the_runtime(
    predict: EmulatedFunction, traffic_rows: list[dict[str, Any]]
) -> None:
    answer = predict.invoke(make_event("rest_api_post_predict", {"features": traffic_rows[1]}))
    body = json.loads(answer.payload["body"])
    feedback = {
        "feedback": [
            {
                "prediction_id": body["prediction_id"],
                "label": body["label"],
                "feedback_token": body["feedback_token"],
            }
        ]
    }
    accepted = predict.invoke(make_event("rest_api_post_feedback", feedback))
    assert accepted.payload["statusCode"] == 202, accepted.payload


def test_a_write_outside_tmp_fails_as_on_lambda(
    emulate: Emulate,
    asset: Callable[[str], Path],
    read_only: bool,
    churn_bundle: VerifiedBundle,
    tmp_path: Path,
) -> None:
    """An archived bundle is unpacked into the bundle cache: a cache inside the task root
    (read-only on Lambda) cannot be written, and the function says so on /health instead of
    serving."""
    if not read_only:
        pytest.skip("no private mount namespace here: the task root cannot be made read-only")
    task = asset("predict")
    archive = pack_bundle(churn_bundle.path, tmp_path / "bundle.tar.gz")
    with emulate(
        "predict",
        PREDICT_LAYERS,
        PREDICT_HANDLER,
        {"MODEL_URI": archive.as_uri(), "BUNDLE_CACHE_DIR": str(task / "bundles")},
    ) as function:
        health = function.invoke(make_event("rest_api_get_health"))
    assert health.payload["statusCode"] == 503
    assert "Read-only file system" in function.log()
    assert not (task / "bundles").exists()


def test_a_wrong_handler_path_fails_the_init(emulate: Emulate) -> None:
    with emulate(
        "predict", ("serving-base",), "functions.predict.handlers.lambda_handler", {}
    ) as function:
        answer = function.invoke({})
        log = function.log()
    assert answer.status == "error" and answer.http_status >= 500
    assert "INIT RTDONE(status: error)" in log
    assert "Runtime.ImportModuleError: Unable to import module 'functions.predict.handlers'" in log


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with running_moto_server() as endpoint:
        yield endpoint


def test_the_rollout_function_steps_a_model_through_the_runtime(
    emulate: Emulate, moto: str
) -> None:
    """The shared rollout function reads the durable state in S3 (moto's server) for the model
    the event names, and refuses a model the stage does not serve."""
    bucket = new_bucket(aws_client("s3", endpoint_url=moto))
    targets = {"churn": {"function_name": "lambdaserve-dev-predict", "guard_alarm_names": []}}
    with emulate(
        "rollout",
        ("serving-base",),
        ROLLOUT_HANDLER,
        {
            "MODEL_TARGETS": json.dumps(targets),
            "STATE_BUCKET": bucket,
            "AWS_ENDPOINT_URL": moto,
            "POWERTOOLS_SERVICE_NAME": "lambdaserve-rollout",
        },
        name="lambdaserve-dev-rollout",
        memory_mb=256,
    ) as function:
        churn = function.invoke({"model_name": "churn"}).payload
        fraud = function.invoke({"model_name": "fraud"}).payload

    assert churn["status"] == "error" and churn["finished"] is True
    assert churn["reason"].startswith("no rollout of churn has been started"), churn
    assert fraud["reason"] == "this stage serves no model 'fraud' (models: churn)"


def test_the_drift_function_judges_a_models_window_through_the_runtime(
    emulate: Emulate, moto: str
) -> None:
    s3 = aws_client("s3", endpoint_url=moto)
    captures, artifacts = new_bucket(s3), new_bucket(s3)
    topic = aws_client("sns", endpoint_url=moto).create_topic(Name="alarms")["TopicArn"]
    with emulate(
        "drift",
        ("serving-base", "drift"),
        DRIFT_HANDLER,
        {
            "CAPTURE_BUCKET": captures,
            "ARTIFACT_BUCKET": artifacts,
            "ALARM_TOPIC_ARN": topic,
            "AWS_ENDPOINT_URL": moto,
            "POWERTOOLS_SERVICE_NAME": "lambdaserve-drift",
        },
        name="lambdaserve-dev-drift",
    ) as function:
        run = function.invoke({"time": "2026-11-27T12:05:00Z", "model_name": "churn"})

    assert run.status == "success", function.log()
    assert run.payload["model_name"] == "churn"
    assert run.payload["window_start"] == "2026-11-27T10:00:00Z"
    assert run.payload["written"] == []  # a quiet window: judged, nothing to report
    assert '"DriftJobRuns":[1.0]' in function.log().replace(" ", "")
