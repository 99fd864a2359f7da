"""Ground truth end to end on loopback: two model versions served by uvicorn capture into one
store, feedback arrives over HTTP (at either version), ``lambdaserve ab report`` joins them."""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from lambdaserve.cli.main import app as cli
from lambdaserve.datasets import churn
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.prediction_ids import new_prediction_ids
from lambdaserve.local.artifact_store import LocalArtifactStore
from lambdaserve.local.capture_log import CaptureLog, read_captures, read_feedback
from lambdaserve.local.feedback_key import local_feedback_signer
from lambdaserve.serving.app import create_app
from lambdaserve.serving.background_server import serve_in_thread
from lambdaserve.serving.model_loader import LoadedModel
from tests.integration.conftest import _json_value

pytestmark = pytest.mark.integration
ROWS_PER_VERSION = 300


def _traffic(bundle: VerifiedBundle) -> tuple[list[dict[str, Any]], list[int]]:
    frame = churn.generate_churn(2 * ROWS_PER_VERSION, seed=23)
    specs = bundle.manifest.features.features
    rows = [
        {spec.name: _json_value(spec, record[spec.name]) for spec in specs}
        for record in frame.to_dict(orient="records")
    ]
    return rows, [int(v) for v in frame[churn.TARGET]]


def test_feedback_joins_captures_across_versions_into_an_ab_report(
    churn_bundle: VerifiedBundle, churn_hgb_bundle: VerifiedBundle, tmp_path: Path
) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    for bundle in (churn_bundle, churn_hgb_bundle):
        store.put(bundle.path)
    sink = CaptureLog(store.root)
    signer = local_feedback_signer(store.root)  # every version shares the store's key
    rows, truth = _traffic(churn_bundle)
    started = datetime.now(UTC)
    with ExitStack() as stack:
        urls = {
            version: stack.enter_context(
                serve_in_thread(
                    create_app(
                        LoadedModel.from_bundle(store.open("churn", version)),
                        capture=sink,
                        feedback_signer=signer,
                    )
                )
            )
            for version in ("1", "2")
        }
        served: list[tuple[str, int, str]] = []  # (prediction id, observed class, token)
        for index, version in enumerate(("1", "2")):
            part = slice(index * ROWS_PER_VERSION, (index + 1) * ROWS_PER_VERSION)
            response = httpx.post(
                f"{urls[version]}/predict/batch", json={"instances": rows[part]}, timeout=30
            )
            assert response.status_code == 200, response.text
            answers = response.json()["predictions"]
            ids = [p["prediction_id"] for p in answers]
            tokens = [p["feedback_token"] for p in answers]
            served += zip(ids, truth[part], tokens, strict=True)
        # Outcomes arrive later, through whichever version the router picks (here: v2 only).
        for start in range(0, len(served), 250):
            chunk = served[start : start + 250]
            response = httpx.post(
                f"{urls['2']}/feedback",
                json={
                    "feedback": [
                        {"prediction_id": i, "label": y, "feedback_token": t} for i, y, t in chunk
                    ]
                },
                timeout=30,
            )
            assert response.status_code == 202, response.text
            assert response.json() == {"accepted": len(chunk), "model": "churn"}
        refused = httpx.post(
            f"{urls['1']}/feedback",
            json={
                "feedback": [
                    {
                        "prediction_id": served[0][0],
                        "label": "churned",
                        "feedback_token": served[0][2],
                    }
                ]
            },
            timeout=30,
        )
    sink.close()
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "feedback", "0", "label"]

    window = (started - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1))
    # The drift job's reader passes feedback lines over; the feedback reader sees only them.
    assert len(list(read_captures(store.root, *window))) == 2 * ROWS_PER_VERSION
    assert len(list(read_feedback(store.root, *window, model="churn"))) == 2 * ROWS_PER_VERSION
    assert list(read_feedback(store.root, *window, model="fraud")) == []

    result = CliRunner().invoke(
        cli,
        [
            "ab", "report", "churn", "--store", str(store.root),
            "--since", window[0].isoformat(), "--until", window[1].isoformat(),
            "--split", "1=0.5", "--split", "2=0.5", "--baseline", "1", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    arms = {arm["version"]: arm for arm in report["arms"]}
    assert {v: (a["served"], a["labelled"]) for v, a in arms.items()} == {
        "1": (ROWS_PER_VERSION, ROWS_PER_VERSION),
        "2": (ROWS_PER_VERSION, ROWS_PER_VERSION),
    }
    assert all(0.6 < arm["accuracy"] < 1 and arm["roc_auc"] > 0.6 for arm in arms.values())
    assert report["sample_ratio"]["p_value"] == pytest.approx(1.0)  # exactly 300/300
    assert not report["sample_ratio"]["mismatch"]
    (comparison,) = report["comparisons"]
    assert (comparison["version"], comparison["baseline"]) == ("2", "1")
    assert report["feedback_received"] == 2 * ROWS_PER_VERSION
    assert report["feedback_unmatched"] == report["feedback_duplicates"] == 0

    text = CliRunner().invoke(
        cli, ["ab", "report", "churn", "--store", str(store.root), "--since", "yesterday"]
    )
    assert text.exit_code == 2 and "is not an ISO 8601 time" in text.output


def test_feedback_for_predictions_never_served_is_refused_and_nothing_is_stored(
    churn_bundle: VerifiedBundle, tmp_path: Path
) -> None:
    """Made-up ids, a real id with another prediction's token, a real token sent to another
    model: each is refused whole with 422 naming the item; only genuine outcomes are stored."""
    store = LocalArtifactStore(tmp_path / "store")
    store.put(churn_bundle.path)
    sink = CaptureLog(store.root)
    rows, truth = _traffic(churn_bundle)
    started = datetime.now(UTC)
    model = LoadedModel.from_bundle(store.open("churn", "1"))
    app = create_app(model, capture=sink, feedback_signer=local_feedback_signer(store.root))
    with serve_in_thread(app) as url:
        answers = httpx.post(
            f"{url}/predict/batch", json={"instances": rows[:2]}, timeout=30
        ).json()["predictions"]
        (first, second) = answers

        def send(*items: dict[str, object]) -> httpx.Response:
            return httpx.post(f"{url}/feedback", json={"feedback": list(items)}, timeout=30)

        made_up = [
            {"prediction_id": new_prediction_ids(1)[0], "label": 1, "feedback_token": "A" * 22}
            for _ in range(50)
        ]
        forged = send(*made_up)
        swapped = send(
            {"prediction_id": first["prediction_id"], "label": truth[0],
             "feedback_token": first["feedback_token"]},
            {"prediction_id": second["prediction_id"], "label": truth[1],
             "feedback_token": first["feedback_token"]},
        )  # fmt: skip
        missing = send({"prediction_id": first["prediction_id"], "label": truth[0]})
        genuine = send(
            {"prediction_id": first["prediction_id"], "label": truth[0],
             "feedback_token": first["feedback_token"]},
        )  # fmt: skip
    # Another model's token under the same key does not label this model's prediction.
    other = local_feedback_signer(store.root).token("fraud", second["prediction_id"])
    assert other != second["feedback_token"]
    sink.close()

    assert forged.status_code == 422
    assert len(forged.json()["detail"]) == 50
    assert forged.json()["detail"][0]["loc"] == ["body", "feedback", "0", "feedback_token"]
    assert "feedback_token" in forged.json()["detail"][0]["msg"]
    assert swapped.status_code == 422
    assert [e["loc"] for e in swapped.json()["detail"]] == [
        ["body", "feedback", "1", "feedback_token"]
    ]
    assert missing.status_code == 422
    assert genuine.status_code == 202, genuine.text
    window = (started - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1))
    stored = list(read_feedback(store.root, *window))
    # The refused requests stored nothing, not even their genuine first item.
    assert [(f.prediction_id, f.label) for f in stored] == [(first["prediction_id"], truth[0])]


def test_the_store_key_survives_a_restart_and_is_private(tmp_path: Path) -> None:
    signer = local_feedback_signer(tmp_path)
    again = local_feedback_signer(tmp_path)
    assert signer.token("churn", "0" * 26) == again.token("churn", "0" * 26)
    assert (tmp_path / "feedback.key").stat().st_mode & 0o777 == 0o600
