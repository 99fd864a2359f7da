"""Two models in one local store, each published to its own function: one gateway serves both on
``/models/{name}/...``, ``status`` without a name shows both, and a rollout of one leaves the
other's live alias untouched."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import lambdaserve
from lambdaserve.cli.main import app
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.function_versions import LIVE_ALIAS
from lambdaserve.serving.background_server import serve_in_thread
from lambdaserve.serving.settings import ServingSettings
from lambdaserve.wiring.local import open_local
from tests.integration.conftest import Row
from tests.support.penguins import json_row, penguins, user_pipeline

pytestmark = pytest.mark.integration


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def two_models(churn_bundle: VerifiedBundle, tmp_path: Path) -> tuple[Path, object]:
    """churn (our job's forest, ONNX) and penguins (a user's pipeline), each published without
    naming a function: the store's first model lives on ``predict``, the next on its own."""
    store = tmp_path / "store"
    x_train, x_test, y_train, y_test = penguins()
    model = user_pipeline().fit(x_train, y_train)
    lambdaserve.save_model(
        model, tmp_path / "penguins", name="penguins", version="1", X=x_train, y=y_train,
        eval_set=(x_test, y_test),
    )  # fmt: skip
    for name, bundle in (("churn", churn_bundle.path), ("penguins", tmp_path / "penguins")):
        cli("import", str(bundle), "--store", str(store))
        cli("models", "promote", f"{name}:1", "--store", str(store))
        cli("publish", f"{name}:1", "--store", str(store))
    return store, (model, x_test)


def test_one_gateway_serves_each_model_on_its_own_routes(
    two_models: tuple[Path, object], traffic_rows: list[Row]
) -> None:
    store, (model, x_test) = two_models  # type: ignore[misc]
    local = open_local(store)
    served = local.served_models()
    assert served == {"churn": "predict", "penguins": "penguins"}
    router = local.model_router(served, ServingSettings(capture_enabled=False))
    penguin = json_row(x_test.iloc[0])
    with serve_in_thread(router) as url:
        churn = httpx.post(f"{url}/models/churn/predict", json={"features": traffic_rows[0]})
        bird = httpx.post(f"{url}/models/penguins/predict", json={"features": penguin})
        unprefixed = httpx.post(f"{url}/predict", json={"features": penguin})
        unknown = httpx.post(f"{url}/models/fraud/predict", json={"features": penguin})
        docs = httpx.get(f"{url}/models/penguins/docs")
        schema = httpx.get(f"{url}/models/penguins/openapi.json")
    assert churn.status_code == 200 and churn.json()["model"]["name"] == "churn"
    assert bird.status_code == 200 and bird.json()["model"]["name"] == "penguins"
    assert bird.json()["probability"] == pytest.approx(model.predict_proba(x_test.head(1))[0, 1])
    assert unprefixed.status_code == 404 and "/models/{name}/predict" in unprefixed.text
    assert unknown.status_code == 404 and "served: churn, penguins" in unknown.text
    assert docs.status_code == 200 and "/models/penguins/openapi.json" in docs.text
    assert "island" in schema.text


def test_status_without_a_name_shows_every_model(two_models: tuple[Path, object]) -> None:
    store, _ = two_models
    output = cli("status", "--store", str(store))
    assert "churn: live alias of predict" in output
    assert "penguins: live alias of penguins" in output


def test_a_rollout_of_one_model_leaves_the_others_alias_untouched(
    two_models: tuple[Path, object], tmp_path: Path
) -> None:
    store, (model, x_test) = two_models  # type: ignore[misc]
    x_train, _, y_train, y_test = penguins()
    lambdaserve.save_model(
        model, tmp_path / "penguins-2", name="penguins", version="2", X=x_train, y=y_train,
        eval_set=(x_test, y_test),
    )  # fmt: skip
    holdout = tmp_path / "holdout.csv"
    x_test.assign(sex=y_test).to_csv(holdout, index=False)  # both scored on the same rows
    cli("import", str(tmp_path / "penguins-2"), "--store", str(store), "--holdout", str(holdout))
    local = open_local(store)
    churn_before = local.functions("predict").alias(LIVE_ALIAS)
    cli("publish", "penguins:2", "--store", str(store))  # to penguins' function, found by name
    cli(
        "rollout", "start", "penguins", "--weight", "0.2", "--interval", "0",
        "--min-samples", "0", "--store", str(store),
    )  # fmt: skip
    penguins_alias = local.functions("penguins").alias(LIVE_ALIAS)
    assert penguins_alias is not None and penguins_alias.additional  # the canary is on
    assert local.functions("predict").alias(LIVE_ALIAS) == churn_before
    assert "penguins" in cli("rollout", "status", "penguins", "--store", str(store))
