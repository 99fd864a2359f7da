"""``lambdaserve import models:/...``: scikit-learn models a user logged in their own MLflow
(SQLite in a temporary directory, logged with MLflow's API) become verified bundles, stored and
registered like any other; the schema comes from the signature (or ``--sample``), the reference
from ``--reference``. Pickle is read only with ``--allow-pickle`` and never reaches the bundle;
another flavour, an unreachable server and data that do not fit are refused, nothing stored."""

from __future__ import annotations

import json
import tarfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mlflow
import mlflow.sklearn
import pandas as pd
import pytest
import sklearn
from mlflow import MlflowClient
from mlflow.models import infer_signature
from palmerpenguins import load_penguins
from sklearn.datasets import load_diabetes, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from lambdaserve.cli.main import app
from lambdaserve.kernel.manifest import Manifest, class_key
from lambdaserve.local.artifact_store import LocalArtifactStore
from lambdaserve.registry.mlflow_tracking import public_tracking_uri
from lambdaserve.serving.app import create_app
from lambdaserve.serving.background_server import free_port, serve_in_thread
from lambdaserve.serving.model_loader import LoadedModel
from tests.support.penguins import user_pipeline

pytestmark = pytest.mark.integration

TEXT = ["island", "sex"]  # the species is the target here
PIP = ["scikit-learn"]  # skips MLflow's slow requirements inference; the model is the same


@dataclass(frozen=True)
class Tracking:
    uri: str
    root: Path
    penguins: pd.DataFrame  # features and the species target, as the user holds them
    penguins_run: str

    def csv(self, name: str, frame: pd.DataFrame) -> Path:
        path = self.root / name
        frame.to_csv(path, index=False)
        return path


def _log_models(experiment: str, penguins: pd.DataFrame) -> str:
    """What a user does: fit, log with a signature and register; a few other kinds too."""
    X, y = penguins.drop(columns=["species"]), penguins["species"]
    model = user_pipeline(TEXT, LogisticRegression(max_iter=2000)).fit(X, y)
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict_proba(X)),
            registered_model_name="penguins",
            skops_trusted_types=["numpy.dtype"],  # MLflow's own check on save asks for it
            pip_requirements=PIP,
        )
    MlflowClient().set_registered_model_alias("penguins", "prod", "1")

    diabetes = load_diabetes(as_frame=True).frame
    regressor = make_pipeline(SimpleImputer(), StandardScaler(), Ridge()).fit(
        diabetes.drop(columns=["target"]), diabetes["target"]
    )
    wine_X, wine_y = load_wine(return_X_y=True, as_frame=True)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(wine_X, wine_y)
    with mlflow.start_run(experiment_id=experiment):
        mlflow.sklearn.log_model(
            regressor,
            name="model",
            registered_model_name="diabetes",
            skops_trusted_types=["numpy.dtype"],
            pip_requirements=PIP,
        )
        mlflow.sklearn.log_model(
            forest,
            name="pickled",
            serialization_format="pickle",
            registered_model_name="wine",
            pip_requirements=PIP,
        )
    return str(run.info.run_id)


def _log_pyfunc(experiment: str) -> None:
    """A model of another flavour: a pyfunc ``python_model`` (importing pyfunc warns)."""
    from mlflow.pyfunc.model import PythonModel

    class Echo(PythonModel):
        def predict(
            self, context: Any, model_input: list[str], params: dict[str, Any] | None = None
        ) -> list[str]:
            return model_input

    with mlflow.start_run(experiment_id=experiment):
        mlflow.pyfunc.log_model(
            name="echo", python_model=Echo(), registered_model_name="echo", pip_requirements=PIP
        )


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Tracking:
    root = tmp_path_factory.mktemp("user-mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    penguins = load_penguins()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        experiment = MlflowClient().create_experiment(
            "penguins", artifact_location=(root / "artifacts").as_uri()
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLflow's hints while the user logs, not ours
            run_id = _log_models(experiment, penguins)
            _log_pyfunc(experiment)
    return Tracking(uri, root, penguins, run_id)


@pytest.fixture
def user_env(tracking: Tracking, monkeypatch: pytest.MonkeyPatch) -> Tracking:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.uri)
    return tracking


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def imported(output: str) -> dict[str, Any]:
    return dict(json.loads(output.strip().splitlines()[-1]))


def manifest_of(store: Path, name: str, version: str) -> Manifest:
    return Manifest.model_validate_json(
        (store / "models" / name / version / "manifest.json").read_text()
    )


def registered_versions(tracking: Tracking, name: str) -> int:
    return len(MlflowClient(tracking.uri).search_model_versions(f"name = '{name}'"))


@pytest.mark.parametrize(
    "row_index",
    [0, 3],
    ids=["complete-row", "row-with-missing-values"],
)
def test_a_registered_version_with_a_signature_becomes_a_served_bundle(
    user_env: Tracking, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, row_index: int
) -> None:
    features = user_env.penguins.drop(columns=["species"])
    reference = user_env.csv("penguins.csv", features)
    store = tmp_path / "store"

    code, output = run(
        "import", "models:/penguins/1", "--reference", str(reference), "--store", str(store),
        "--json",
    )  # fmt: skip

    assert code == 0, output
    result = imported(output)
    assert result["task"] == "multiclass_classification"
    assert result["registry"]["version"]  # registered (here in the user's own server) ...
    client = MlflowClient(user_env.uri)
    assert str(client.get_model_version_by_alias("penguins", "prod").version) == "1"  # theirs kept
    manifest = manifest_of(store, "penguins", result["version"])
    assert [f.name for f in manifest.features.features] == list(features.columns)
    island = next(f for f in manifest.features.features if f.name == "island")
    assert island.categories == ("Biscoe", "Dream", "Torgersen")
    assert manifest.model_input.dtypes["year"] == "int64"
    assert manifest.source is not None
    assert manifest.source.model_dump(exclude_none=True) == {
        "kind": "mlflow",
        "uri": "models:/penguins/1",
        "tracking_uri": user_env.uri,
        "model_name": "penguins",
        "model_version": "1",
        "run_id": user_env.penguins_run,
        "serialization": "skops",
        "library_version": sklearn.__version__,  # logged and imported with the same one
    }
    assert "saved with scikit-learn" not in output

    bundle = LocalArtifactStore(store).open("penguins", result["version"])
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")  # MLflow's own loader
    original = mlflow.sklearn.load_model("models:/penguins/1")
    row = features.iloc[[row_index]]  # row 3: a penguin whose measurements are all missing
    expected = original.predict_proba(row)[0]
    payload = {
        k: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v)
        for k, v in row.iloc[0].items()
    }
    with serve_in_thread(create_app(LoadedModel.from_bundle(bundle))) as url:
        answer = httpx.post(f"{url}/predict", json={"features": payload}, timeout=30)
    assert answer.status_code == 200, answer.text
    served = answer.json()["probabilities"]
    for label, probability in zip(original.classes_, expected, strict=True):
        assert served[class_key(str(label))] == pytest.approx(probability, abs=1e-6)


def test_an_alias_with_the_target_in_the_reference(user_env: Tracking, tmp_path: Path) -> None:
    reference = user_env.csv("penguins-with-target.csv", user_env.penguins)
    store = tmp_path / "store"

    code, output = run(
        "import", "models:/penguins@prod", "--reference", str(reference), "--target", "species",
        "--store", str(store), "--no-register", "--json",
    )  # fmt: skip

    assert code == 0, output
    manifest = manifest_of(store, "penguins", imported(output)["version"])
    assert manifest.target == "species"
    assert manifest.source is not None
    assert (manifest.source.uri, manifest.source.model_version) == ("models:/penguins@prod", "1")


def test_a_run_uri_needs_a_name_and_records_the_run(user_env: Tracking, tmp_path: Path) -> None:
    reference = user_env.csv("run.csv", user_env.penguins.drop(columns=["species"]))
    store = tmp_path / "store"
    uri = f"runs:/{user_env.penguins_run}/model"

    code, output = run("import", uri, "--reference", str(reference), "--store", str(store))
    assert code == 1
    assert "pass --name NAME" in output

    code, output = run(
        "import", uri, "--name", "penguin-run", "--reference", str(reference),
        "--store", str(store), "--no-register", "--json",
    )  # fmt: skip
    assert code == 0, output
    source = manifest_of(store, "penguin-run", imported(output)["version"]).source
    assert source is not None
    assert (source.uri, source.run_id, source.model_name) == (uri, user_env.penguins_run, None)


def test_without_a_signature_the_sample_gives_the_schema_and_the_holdout_scores_it(
    user_env: Tracking, tmp_path: Path
) -> None:
    diabetes = load_diabetes(as_frame=True).frame
    sample = user_env.csv("sample.csv", diabetes.drop(columns=["target"]).head(5))
    reference = user_env.csv("train.csv", diabetes.iloc[:350])
    holdout = user_env.csv("holdout.csv", diabetes.iloc[350:])
    store = tmp_path / "store"

    code, output = run(
        "import", "models:/diabetes/1", "--sample", str(sample), "--reference", str(reference),
        "--target", "target", "--holdout", str(holdout), "--store", str(store), "--json",
    )  # fmt: skip

    assert code == 0, output
    result = imported(output)
    assert result["task"] == "regression"
    assert result["metrics"]["r2"] > 0.3  # the holdout metrics, recorded in the manifest
    assert result["registry"]["gate"]["passed"] is True
    manifest = manifest_of(store, "diabetes", result["version"])
    assert manifest.data.train_rows == 350 and manifest.data.holdout_rows == len(diabetes) - 350


def test_a_pickle_model_needs_allow_pickle_and_the_bundle_holds_none(
    user_env: Tracking, tmp_path: Path
) -> None:
    wine = load_wine(as_frame=True).data
    reference = user_env.csv("wine.csv", wine)
    store = tmp_path / "store"
    args = ["import", "models:/wine/1", "--reference", str(reference), "--store", str(store)]

    code, output = run(*args)

    assert code == 1
    assert "--allow-pickle" in output and "pickle" in output
    assert not (store / "models").exists()
    assert registered_versions(user_env, "wine") == 1  # only the user's own

    code, output = run(*args, "--allow-pickle", "--json")
    assert code == 0, output
    result = imported(output)
    manifest = manifest_of(store, "wine", result["version"])
    assert manifest.source is not None and manifest.source.serialization == "pickle"
    archive = store / "models" / "wine" / result["version"] / "bundle.tar.gz"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert any(n.endswith("model.skops") for n in names)
    assert not [n for n in names if n.endswith((".pkl", ".pickle", ".joblib"))]


def test_another_flavour_is_refused(user_env: Tracking, tmp_path: Path) -> None:
    reference = user_env.csv("echo.csv", load_wine(as_frame=True).data)
    store = tmp_path / "store"

    code, output = run(
        "import", "models:/echo/1", "--reference", str(reference), "--store", str(store)
    )

    assert code == 1
    assert "python_function" in output and "mlflow.sklearn.log_model" in output
    assert not store.exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda f: f.rename(columns={"island": "isle"}), "do not match the model's signature"),
        (lambda f: f.assign(year="recent"), "column 'year'"),
    ],
    ids=["renamed-column", "text-in-a-number"],
)
def test_data_that_does_not_fit_the_signature_is_refused(
    user_env: Tracking, tmp_path: Path, change: Any, expected: str
) -> None:
    reference = user_env.csv("bad.csv", change(user_env.penguins.drop(columns=["species"])))
    store = tmp_path / "store"

    code, output = run(
        "import", "models:/penguins/1", "--reference", str(reference), "--store", str(store)
    )

    assert code == 1
    assert expected in output
    assert not store.exists()


def test_a_missing_reference_or_tracking_server_is_refused(
    tracking: Tracking, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    code, output = run("import", "models:/penguins/1", "--store", str(store))
    assert code == 1
    assert "MLFLOW_TRACKING_URI" in output

    code, output = run(
        "import", "models:/penguins/1", "--tracking-uri", tracking.uri, "--store", str(store)
    )
    assert code == 1
    assert "--reference" in output
    assert not store.exists()


def test_an_unreachable_tracking_server_fails_in_seconds(tmp_path: Path) -> None:
    reference = tmp_path / "reference.csv"
    reference.write_text("a,b\n1,2\n")
    closed = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()

    code, output = run(
        "import", "models:/penguins/1", "--tracking-uri", closed, "--reference", str(reference),
        "--store", str(tmp_path / "store"),
    )  # fmt: skip

    assert time.monotonic() - started < 5
    assert code == 1
    assert "unreachable" in output and closed in output
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    ("given", "recorded"),
    [
        ("http://alice:s3cret@mlflow.example.com:5000/", "http://mlflow.example.com:5000/"),
        ("https://mlflow.example.com/?token=abc&workspace=ml", "https://mlflow.example.com/?workspace=ml"),
        ("postgresql://u:p@db/mlflow?sslmode=require&password=x", "postgresql://db/mlflow?sslmode=require"),
        ("sqlite:////srv/mlflow.db", "sqlite:////srv/mlflow.db"),
    ],
)  # fmt: skip
def test_the_recorded_tracking_uri_carries_no_credentials(given: str, recorded: str) -> None:
    assert public_tracking_uri(given) == recorded


def test_a_stage_or_unknown_uri_is_refused(user_env: Tracking, tmp_path: Path) -> None:
    reference = user_env.csv("any.csv", user_env.penguins)
    code, output = run(
        "import", "models:/penguins/Production", "--reference", str(reference),
        "--store", str(tmp_path / "store"),
    )  # fmt: skip
    assert code == 1
    assert "models:/NAME@ALIAS" in output


def test_importing_into_the_server_it_comes_from_needs_another_name(
    user_env: Tracking, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lambdaserve's registry may be the user's own server (LAMBDASERVE_REGISTRY_URI): its
    version must not land among the user's own versions of the same model."""
    monkeypatch.setenv("LAMBDASERVE_REGISTRY_URI", user_env.uri)
    reference = user_env.csv("same-server.csv", user_env.penguins.drop(columns=["species"]))
    store = tmp_path / "store"
    before = registered_versions(user_env, "penguins")

    code, output = run(
        "import", "models:/penguins/1", "--reference", str(reference), "--store", str(store)
    )

    assert code == 1
    assert "pass --name with another name" in " ".join(output.split())
    assert registered_versions(user_env, "penguins") == before
    assert not (store / "models").exists() or not any((store / "models").iterdir())
    code, output = run(
        "import", "models:/penguins/1", "--reference", str(reference), "--store", str(store),
        "--name", "penguins-served",
    )  # fmt: skip
    assert code == 0, output
    assert registered_versions(user_env, "penguins-served") == 1
    assert registered_versions(user_env, "penguins") == before


def test_importing_the_same_model_version_again_changes_nothing(
    user_env: Tracking, tmp_path: Path
) -> None:
    reference = user_env.csv("again.csv", user_env.penguins.drop(columns=["species"]))
    store = tmp_path / "store"
    args = ("--reference", str(reference), "--store", str(store), "--no-register")
    first = run("import", "models:/penguins/1", *args, "--json")
    again = run("import", "models:/penguins@prod", *args)  # the alias names version 1 too
    assert first[0] == 0, first[1]
    assert again[0] == 0, again[1]
    assert "was already stored" in again[1]
    assert len(LocalArtifactStore(store).versions("penguins")) == 1
    other = user_env.csv("other.csv", user_env.penguins.drop(columns=["species"]).head(200))
    code, _ = run("import", "models:/penguins/1", *args[:1], str(other), *args[2:])
    assert code == 0 and len(LocalArtifactStore(store).versions("penguins")) == 2


def test_a_model_saved_with_another_scikit_learn_is_imported_with_a_warning(
    user_env: Tracking, tmp_path: Path
) -> None:
    """MLflow records the version it saved with; loading with another may answer differently."""
    logged = MlflowClient(user_env.uri).get_model_version("diabetes", "1").source  # models:/m-...
    (mlmodel,) = [
        p for p in (user_env.root / "artifacts").rglob("MLmodel") if logged.split("/")[-1] in str(p)
    ]
    text = mlmodel.read_text()
    assert f"sklearn_version: {sklearn.__version__}" in text
    mlmodel.write_text(
        text.replace(f"sklearn_version: {sklearn.__version__}", "sklearn_version: 1.4.2")
    )
    try:
        diabetes = load_diabetes(as_frame=True).frame.drop(columns=["target"])
        reference = user_env.csv("diabetes.csv", diabetes)
        code, output = run(
            "import", "models:/diabetes/1", "--reference", str(reference),
            "--store", str(tmp_path / "store"), "--no-register",
        )  # fmt: skip
    finally:
        mlmodel.write_text(text)
    assert code == 0, output
    said = " ".join(output.split())
    assert f"saved with scikit-learn 1.4.2 and is served with {sklearn.__version__}" in said
