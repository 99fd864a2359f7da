"""A user's own pipeline through the first door: ``save_model`` in their code, ``lambdaserve
import`` (store, register, gate), ``lambdaserve serve`` as a real process on loopback, and
predictions over HTTP equal to what the model answers in the user's notebook. A pipeline holding
the user's own transformer is served only when its code and its trust are both named."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from typer.testing import CliRunner

import lambdaserve
from lambdaserve.cli.main import app
from lambdaserve.wiring.local import open_local
from tests.support.penguins import USER_CODE, json_row, penguins, user_pipeline

pytestmark = pytest.mark.integration
LAMBDASERVE = [sys.executable, "-m", "lambdaserve.cli"]
SERVE_STARTUP_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(store: Path, *options: str) -> Iterator[str]:
    """``lambdaserve serve`` in its own process (a clean interpreter: only what it imports)."""
    port = _free_port()
    command = [*LAMBDASERVE, "serve", "--store", str(store), "--port", str(port), *options]
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + SERVE_STARTUP_SECONDS
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    pytest.fail(f"serve exited {process.returncode}: {process.stdout.read()}")  # type: ignore[union-attr]
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def _import(bundle: Path, store: Path, *options: str) -> str:
    result = CliRunner().invoke(app, ["import", str(bundle), "--store", str(store), *options])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_notebook_pipeline_is_imported_registered_and_served_over_http(tmp_path: Path) -> None:
    x_train, x_test, y_train, y_test = penguins()
    model = user_pipeline().fit(x_train, y_train)
    lambdaserve.save_model(
        model, tmp_path / "bundle", name="penguins", X=x_train, y=y_train, eval_set=(x_test, y_test)
    )
    store = tmp_path / "store"
    output = _import(tmp_path / "bundle", store)
    assert "registered as penguins v1 (challenger)" in output
    registered = open_local(store).registry.get("penguins", "1")
    assert registered.metrics["roc_auc"] > 0.9

    rows = x_test.head(25)
    expected = model.predict_proba(rows)[:, 1]
    with serving(store, "--model", "penguins") as url:
        one = httpx.post(f"{url}/predict", json={"features": json_row(rows.iloc[0])}).json()
        batch = httpx.post(
            f"{url}/predict/batch", json={"instances": [json_row(r) for _, r in rows.iterrows()]}
        )
        described = httpx.get(f"{url}/model").json()
        wrong = httpx.post(f"{url}/predict", json={"features": {"species": "Adelie"}})
    assert one["probability"] == pytest.approx(expected[0], abs=1e-9)
    assert one["label"] == ("male" if expected[0] >= 0.5 else "female")
    served = [p["probability"] for p in batch.json()["predictions"]]
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-9)
    assert described["runtime"] == "sklearn"
    assert wrong.status_code == 422 and "island" in wrong.text


@pytest.fixture
def custom_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, pd.DataFrame, Any]:
    monkeypatch.syspath_prepend(str(USER_CODE))
    from penguin_features import BillShape

    x_train, _, y_train, _ = penguins()
    known = x_train.notna().all(axis=1)
    x, y = x_train[known], y_train[known]
    features = ColumnTransformer(
        [
            ("numeric", "passthrough", make_column_selector(dtype_include="number")),
            (
                "text",
                OneHotEncoder(handle_unknown="ignore"),
                make_column_selector(dtype_exclude="number"),
            ),
        ]
    )
    model = make_pipeline(BillShape(), features, SimpleImputer(), LogisticRegression(max_iter=3000))
    model.fit(x, y)
    lambdaserve.save_model(
        model, tmp_path / "bundle", name="shapes", X=x, trusted=["penguin_features.BillShape"]
    )
    store = tmp_path / "store"
    _import(tmp_path / "bundle", store)
    return store, x, model


def test_a_custom_transformer_is_served_with_its_code_named(
    custom_bundle: tuple[Path, pd.DataFrame, Any],
) -> None:
    store, x, model = custom_bundle
    row = x.iloc[3]
    with serving(store, "--model", "shapes", "--code", str(USER_CODE)) as url:
        answer = httpx.post(f"{url}/predict", json={"features": json_row(row)}).json()
    assert answer["probability"] == pytest.approx(model.predict_proba(x.iloc[[3]])[0, 1], abs=1e-9)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ((), "does not trust: penguin_features.BillShape"),
        (("--trust", "penguin_features.BillShape"), "needs code this deployment does not have"),
    ],
    ids=["no-trust-no-code", "trust-without-code"],
)
def test_a_custom_transformer_is_refused_without_its_code_or_its_trust(
    custom_bundle: tuple[Path, pd.DataFrame, Any], options: tuple[str, ...], message: str
) -> None:
    store, _, _ = custom_bundle
    command = [*LAMBDASERVE, "serve", "--store", str(store), "--model", "shapes", *options]
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert message in " ".join(result.stderr.split()), result.stderr
    assert "Traceback" not in result.stderr
