"""Every task through serving on loopback: a multiclass model (iris, and churn's contract type
from dirty mixed-type rows), a regression model (diabetes, and churn's monthly charges) and a
binary one (breast cancer) are trained by the job, served by uvicorn, and answer single and
batch predictions in their task's shape; ``/model`` and the OpenAPI document say so; feedback of
the task's kind is stored beside the captures, and of the wrong kind refused (422) with nothing
stored; the A/B report and the drift job then judge what was captured, per task."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from lambdaserve.abtest.report import ab_report
from lambdaserve.datasets import churn
from lambdaserve.drift.job import bundle_baselines, run_drift
from lambdaserve.drift.report_store import DriftReportStore
from lambdaserve.drift.statistics import SCORE_FEATURE
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.manifest import class_key
from lambdaserve.local.artifact_store import LocalArtifactStore
from lambdaserve.local.capture_log import CaptureLog, read_captures, read_feedback
from lambdaserve.local.drift_reports import LocalReportFiles
from lambdaserve.serving.app import create_app
from lambdaserve.serving.background_server import serve_in_thread
from lambdaserve.serving.model_loader import LoadedModel
from tests.integration.conftest import _json_value
from tests.support.bundles import train_bundle

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Case:
    name: str
    frame: pd.DataFrame
    target: str
    task: str
    drop: tuple[str, ...] = ()


def _iris() -> pd.DataFrame:
    frame = load_iris(as_frame=True).frame
    names = dict(enumerate(load_iris().target_names))
    return frame.assign(target=frame["target"].map(names))


def _churn() -> pd.DataFrame:
    return churn.generate_churn(900, seed=31)


CASES = [
    Case("iris", _iris(), "target", "multiclass_classification"),
    Case(
        "contract",
        _churn(),
        "contract",
        "multiclass_classification",
        (churn.ID_COLUMN, churn.TARGET),
    ),
    Case("diabetes", load_diabetes(as_frame=True).frame, "target", "regression"),
    Case(
        "charges",
        _churn(),
        "monthly_charges",
        "regression",
        (churn.ID_COLUMN, churn.TARGET, "total_charges"),
    ),
    Case("cancer", load_breast_cancer(as_frame=True).frame, "target", "binary_classification"),
]


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Case, VerifiedBundle, str, Path]]:
    case: Case = request.param
    root = tmp_path_factory.mktemp(case.name)
    bundle = train_bundle(
        root / "job",
        case.frame,
        target=case.target,
        drop=list(case.drop),
        model_name=case.name,
        model_version="1",
        n_estimators=20,
    )
    store = root / "store"
    app = create_app(LoadedModel.from_bundle(bundle), capture=CaptureLog(store))
    with serve_in_thread(app) as url:
        yield case, bundle, url, store


def _rows(case: Case, bundle: VerifiedBundle, n: int) -> list[dict[str, Any]]:
    specs = bundle.manifest.features.features
    records = case.frame.head(n).to_dict(orient="records")
    return [
        {spec.name: _json_value(spec, record[spec.name]) for spec in specs} for record in records
    ]


def _check_answer(case: Case, bundle: VerifiedBundle, answer: dict[str, Any]) -> None:
    manifest = bundle.manifest
    assert answer["model"] == {"name": case.name, "version": "1"}
    assert len(answer["prediction_id"]) == 26 and answer["feedback_token"]
    if case.task == "binary_classification":
        assert set(answer) >= {"probability", "label"} and "probabilities" not in answer
        assert 0.0 <= answer["probability"] <= 1.0 and answer["label"] in manifest.classes
    elif case.task == "multiclass_classification":
        probabilities = answer["probabilities"]
        assert list(probabilities) == [class_key(c) for c in manifest.classes]
        assert math.isclose(sum(probabilities.values()), 1.0, rel_tol=1e-4)
        best = max(probabilities, key=probabilities.__getitem__)
        assert class_key(answer["label"]) == best and "probability" not in answer
    else:
        assert set(answer) & {"probability", "label", "probabilities"} == set()
        assert math.isfinite(answer["prediction"])
        span = manifest.target_range
        assert span is not None
        width = span.maximum - span.minimum
        assert span.minimum - width <= answer["prediction"] <= span.maximum + width


def test_the_task_is_in_the_bundle_and_in_model_info(
    served: tuple[Case, VerifiedBundle, str, Path],
) -> None:
    case, bundle, url, _ = served
    assert bundle.manifest.task == case.task
    described = httpx.get(f"{url}/model").json()
    assert described["task"] == case.task
    if case.task == "regression":
        assert described["classes"] == [] and described["target_range"]["maximum"] > 0
    else:
        assert len(described["classes"]) == (2 if case.task == "binary_classification" else 3)


def test_single_and_batch_predictions_answer_in_the_tasks_shape(
    served: tuple[Case, VerifiedBundle, str, Path],
) -> None:
    case, bundle, url, _ = served
    rows = _rows(case, bundle, 25)
    with httpx.Client(base_url=url, timeout=30) as client:
        single = client.post("/predict", json={"features": rows[0]})
        batch = client.post("/predict/batch", json={"instances": rows})
    assert single.status_code == 200, single.text
    assert batch.status_code == 200, batch.text
    _check_answer(case, bundle, single.json())
    answers = batch.json()["predictions"]
    assert len(answers) == 25
    for answer in answers:
        _check_answer(case, bundle, answer)


def test_the_openapi_document_describes_the_tasks_answer(
    served: tuple[Case, VerifiedBundle, str, Path],
) -> None:
    case, _, url, _ = served
    document = httpx.get(f"{url}/openapi.json").json()
    response = document["paths"]["/predict"]["post"]["responses"]["200"]
    ref = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    properties = document["components"]["schemas"][ref]["properties"]
    expected = {
        "binary_classification": {"probability", "label"},
        "multiclass_classification": {"probabilities", "label"},
        "regression": {"prediction"},
    }[case.task]
    assert expected <= set(properties)
    outcome = document["components"]["schemas"]["Feedback"]["properties"]
    assert ("value" in outcome) == (case.task == "regression")
    assert ("label" in outcome) == (case.task != "regression")


def test_predictions_are_captured_with_the_tasks_outputs_and_take_feedback_of_its_kind(
    served: tuple[Case, VerifiedBundle, str, Path],
) -> None:
    case, bundle, url, store = served
    started = datetime.now(UTC) - timedelta(seconds=1)
    rows = _rows(case, bundle, 3)
    with httpx.Client(base_url=url, timeout=30) as client:
        answers = client.post("/predict/batch", json={"instances": rows}).json()["predictions"]
        right = (
            {"value": 42.5} if case.task == "regression" else {"label": bundle.manifest.classes[0]}
        )
        wrong = {"label": "nope"} if case.task == "regression" else {"value": 1.0}
        items = [
            {"prediction_id": a["prediction_id"], "feedback_token": a["feedback_token"]}
            for a in answers
        ]
        refused = client.post("/feedback", json={"feedback": [{**items[0], **wrong}]})
        non_finite = client.post(
            "/feedback",
            content=b'{"feedback": [{"prediction_id": "%s", "feedback_token": "%s", "value": NaN}]}'
            % (items[0]["prediction_id"].encode(), items[0]["feedback_token"].encode()),
            headers={"content-type": "application/json"},
        )
        accepted = client.post("/feedback", json={"feedback": [{**i, **right} for i in items]})
    until = datetime.now(UTC) + timedelta(seconds=1)
    assert refused.status_code == 422, refused.text
    assert non_finite.status_code == 422, non_finite.text
    assert accepted.status_code == 202, accepted.text
    captured = {r.prediction_id: r for r in read_captures(store, started, until)}
    assert set(captured) >= {a["prediction_id"] for a in answers}
    for answer in answers:
        record = captured[answer["prediction_id"]]
        if case.task == "regression":
            assert record.prediction == answer["prediction"] and record.label is None
        elif case.task == "multiclass_classification":
            assert record.probabilities == answer["probabilities"] and record.probability is None
        else:
            assert record.probability == answer["probability"]
    stored = list(read_feedback(store, started, until, model=case.name))
    assert len(stored) == len(items)  # the refused requests stored nothing
    assert all((f.value is not None) == (case.task == "regression") for f in stored)


def test_the_ab_report_and_the_drift_report_judge_the_tasks_outputs(
    served: tuple[Case, VerifiedBundle, str, Path], tmp_path: Path
) -> None:
    """Served traffic with its true outcomes fed back: the A/B report scores the arm by the
    task's metrics, and the drift job compares the captured outputs with the bundle's own
    reference (the training rows again: no drift)."""
    case, bundle, url, store = served
    manifest = bundle.manifest
    started = datetime.now(UTC) - timedelta(seconds=1)
    rows = _rows(case, bundle, 150)
    truth = case.frame[case.target].head(150).tolist()
    by_text = {str(c): c for c in manifest.classes}
    with httpx.Client(base_url=url, timeout=60) as client:
        answers = client.post("/predict/batch", json={"instances": rows}).json()["predictions"]
        outcomes = [
            {"value": float(value)}
            if case.task == "regression"
            else {"label": by_text[str(value).strip()]}
            for value in truth
        ]
        fed = client.post(
            "/feedback",
            json={
                "feedback": [
                    {
                        "prediction_id": a["prediction_id"],
                        "feedback_token": a["feedback_token"],
                        **o,
                    }
                    for a, o in zip(answers, outcomes, strict=True)
                ]
            },
        )
    assert fed.status_code == 202, fed.text
    until = datetime.now(UTC) + timedelta(seconds=1)
    report = ab_report(
        case.name,
        read_captures(store, started, until),
        read_feedback(store, started, until),
        task=manifest.task,
        classes=manifest.classes,
        positive_class=manifest.positive_class,
        min_labelled=50,
    )
    (arm,) = report.arms
    assert arm.labelled >= 150  # and the earlier tests' labelled predictions in the window
    if case.task == "regression":
        assert arm.mae is not None and arm.mse is not None and arm.accuracy is None
        assert arm.mae < manifest.target_range.std  # type: ignore[union-attr]
    else:
        assert arm.accuracy is not None and arm.accuracy > 0.6 and arm.log_loss is not None

    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    artifacts.put(bundle.path)
    day = timedelta(days=1)
    now = datetime.now(UTC)
    (drift,) = run_drift(
        datetime(now.year, now.month, now.day, tzinfo=UTC) + day + timedelta(minutes=15),
        captures=lambda start, end: read_captures(store, start, end, model=case.name),
        references=bundle_baselines(artifacts),
        reports=DriftReportStore(LocalReportFiles(tmp_path / "reports")),
        window=day,
        min_samples=25,  # iris's holdout (the reference's output) is 30 rows
    )
    assert drift.task == case.task
    output = drift.score
    assert output.feature == SCORE_FEATURE and output.verdict in ("no_drift", "drift")
    expected_test = "jensen_shannon" if case.task == "multiclass_classification" else "score_psi"
    assert output.test == expected_test
