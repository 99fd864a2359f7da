"""``lambdaserve train --script``: the user's own training script run under the SageMaker
script-mode contract, its bundle stored and registered as the built-in job's is; a script that
fails, writes nothing or needs what is not installed is refused with nothing stored."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import httpx
import pytest
from palmerpenguins import load_penguins
from typer.testing import CliRunner

from lambdaserve.cli.main import app
from lambdaserve.local.script_mode import to_cmd_args
from lambdaserve.serving.app import create_app
from lambdaserve.serving.background_server import serve_in_thread
from lambdaserve.serving.model_loader import LoadedModel
from lambdaserve.wiring.local import open_local
from tests.support.penguins import json_row

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "penguins" / "train.py"


@pytest.fixture(scope="module")
def penguins_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("penguins") / "penguins.csv"
    load_penguins().to_csv(path, index=False)
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def flat(text: str) -> str:
    """Without whitespace: rich wraps long messages to the terminal's width."""
    return "".join(text.split())


def script(directory: Path, body: str, name: str = "train.py") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(body))
    return path


def test_the_example_script_is_trained_stored_and_registered(
    penguins_csv: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    code, output = run(
        "train",
        *("--script", str(EXAMPLE), "--data", str(penguins_csv), "--name", "penguins"),
        *("--hp", "max_iter=20", "--hp", "learning_rate=0.2", "--store", str(store), "--json"),
    )
    assert code == 0, output
    result = json.loads(output.strip().splitlines()[-1])
    assert (result["name"], result["version"]) == ("penguins", "1")
    assert result["task"] == "multiclass_classification"
    assert set(result["classes"]) == {"Adelie", "Chinstrap", "Gentoo"}
    assert result["metrics"]["accuracy"] > 0.9  # from the script's eval_set
    local = open_local(store)
    stored = local.store.get("penguins", "1")
    assert stored.digest == result["bundle_sha256"]
    estimator = stored.manifest.estimator
    assert estimator.name.endswith("HistGradientBoostingClassifier")
    assert (estimator.params["max_iter"], estimator.params["learning_rate"]) == (20, 0.2)
    (registered,) = local.registry.versions("penguins")
    assert registered.bundle_sha256 == stored.digest
    assert result["registry"]["version"] == registered.version

    # Then served, as any bundle is: the species of a Gentoo-shaped penguin over HTTP.
    model = LoadedModel.from_bundle(local.store.open("penguins", "1"))
    gentoo = load_penguins().query("species == 'Gentoo'").dropna().iloc[0]
    features = json_row(gentoo[list(model.bundle.manifest.features.names)])
    with serve_in_thread(create_app(model)) as url:
        response = httpx.post(f"{url}/predict", json={"features": features})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["label"] == "Gentoo" and answer["probabilities"]["Gentoo"] > 0.5


CONTRACT = """\
    import json, os, sys
    from pathlib import Path
    import helper  # the source directory is importable
    config = Path(os.environ["SM_INPUT_CONFIG_DIR"], "hyperparameters.json")
    Path(os.environ["CONTRACT_OUT"]).write_text(json.dumps({
        "argv": sys.argv[1:],
        "cwd": os.getcwd(),
        "path0": sys.path[0],
        "files": sorted(os.listdir(".")),
        "channel": sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"])),
        "model_dir": os.listdir(os.environ["SM_MODEL_DIR"]),
        "output_data_dir": os.path.isdir(os.environ["SM_OUTPUT_DATA_DIR"]),
        "output_dir": os.environ["SM_OUTPUT_DIR"],
        "hps": json.loads(os.environ["SM_HPS"]),
        "hp_max_iter": os.environ["SM_HP_MAX_ITER"],
        "config": {k: json.loads(v) for k, v in json.loads(config.read_text()).items()},
        "helper": helper.ANSWER,
    }))
    print("trained, but saved nothing")
"""


def test_the_script_runs_under_the_sagemaker_contract_and_must_write_a_bundle(
    penguins_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hyperparameters (the built-in job's options given, --hp, the name and the next
    version) arrive as ``--key value`` arguments, in SM_HPS and in hyperparameters.json; the
    script runs from a copy of its source directory. Exiting 0 without a bundle is refused."""
    source = tmp_path / "project"
    entry = script(source, CONTRACT)
    (source / "helper.py").write_text("ANSWER = 42\n")
    (source / "requirements.txt").write_text("pandas>=2  # installed here\nscikit-learn\n")
    contract = tmp_path / "contract.json"
    monkeypatch.setenv("CONTRACT_OUT", str(contract))
    store = tmp_path / "store"
    code, output = run(
        "train",
        *("--script", str(entry), "--data", str(penguins_csv), "--name", "penguins"),
        *("--target", "species", "--hp", "max_iter=20", "--store", str(store)),
    )
    assert code == 1, output
    assert flat("your script train.py exited 0 but wrote nothing to SM_MODEL_DIR") in flat(output)
    assert flat('lambdaserve.save_model(model, path=os.environ["SM_MODEL_DIR"]') in flat(output)
    seen = json.loads(contract.read_text())
    hps = {"max_iter": 20, "model_name": "penguins", "model_version": "1", "target": "species"}
    assert seen["argv"] == [
        *("--max_iter", "20", "--model_name", "penguins"),
        *("--model_version", "1", "--target", "species"),
    ]
    assert seen["hps"] == seen["config"] == hps
    assert seen["hp_max_iter"] == "20"
    assert seen["cwd"] == seen["path0"] and seen["cwd"].endswith("/code")
    assert seen["cwd"] != str(source)  # a copy, as SageMaker's /opt/ml/code
    assert seen["files"] == ["helper.py", "requirements.txt", "train.py"]
    assert seen["channel"] == ["penguins.csv"]
    assert seen["model_dir"] == [] and seen["output_data_dir"] is True
    assert seen["helper"] == 42
    assert open_local(store).store.models() == []


def test_a_crashing_script_fails_with_its_own_traceback(penguins_csv: Path, tmp_path: Path) -> None:
    entry = script(
        tmp_path / "src",
        """\
        print("loading penguins")
        def fit():
            raise ValueError("the penguins refused to be fitted")
        fit()
        """,
        name="crash.py",
    )
    store = tmp_path / "store"
    code, output = run(
        "train", "--script", str(entry), "--data", str(penguins_csv), "--store", str(store)
    )
    assert code == 1
    assert flat("your script crash.py failed (exit 1):") in flat(output)
    assert flat("Traceback (most recent call last)") in flat(output)
    assert flat("ValueError: the penguins refused to be fitted") in flat(output)
    assert "training_runner" not in output and "lambdaserve/cli" not in output  # not ours
    assert open_local(store).store.models() == []


def test_unsatisfied_requirements_are_refused_before_the_script_runs(
    penguins_csv: Path, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    ran = tmp_path / "ran"
    entry = script(source, f"open({str(ran)!r}, 'w').write('it ran')\n")
    (source / "requirements.txt").write_text(
        "--index-url https://example.invalid/simple  # pip's business\n"
        "pandas>=2 \\\n    --hash=sha256:0000\nscikit-learn<1.0\n-r more.txt\n"
    )
    (source / "more.txt").write_text("no-such-package-for-lambdaserve-tests>=1\n")
    store = tmp_path / "store"
    code, output = run(
        "train", "--script", str(entry), "--data", str(penguins_csv), "--store", str(store)
    )
    assert code == 1
    assert flat("scikit-learn<1.0 (installed: 1.") in flat(output)
    assert flat("no-such-package-for-lambdaserve-tests>=1 (not installed)") in flat(output)
    assert "pandas" not in output.split("environment", 1)[1]  # satisfied: not named
    assert flat("never installs") in flat(output)
    assert not ran.exists()
    assert open_local(store).store.models() == []


def test_a_bundle_under_another_name_is_refused(penguins_csv: Path, tmp_path: Path) -> None:
    entry = script(
        tmp_path / "src",
        """\
        import os
        import pandas as pd
        from sklearn.linear_model import LogisticRegression
        import lambdaserve
        X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]})
        y = pd.Series([0, 0, 0, 1, 1, 1])
        model = LogisticRegression().fit(X, y)
        lambdaserve.save_model(
            model, path=os.environ["SM_MODEL_DIR"], name="someone-else", X=X, y=y, onnx=False
        )
        """,
    )
    store = tmp_path / "store"
    code, output = run(
        "train",
        *("--script", str(entry), "--data", str(penguins_csv), "--name", "penguins"),
        *("--store", str(store)),
    )
    assert code == 1
    assert flat("saved a model named 'someone-else', but this training is for 'penguins'") in (
        flat(output)
    )
    assert open_local(store).store.models() == []


def test_bad_invocations_are_refused(penguins_csv: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    missing = str(tmp_path / "nope.py")
    code, output = run("train", "--script", missing, "--data", str(penguins_csv), "--store", store)
    assert code == 1
    assert flat("training script") in flat(output) and flat("nope.py does not exist") in flat(
        output
    )
    code, output = run("train", "--data", str(penguins_csv), "--store", store)
    assert code == 2
    assert flat("--target is required") in flat(output)
    code, output = run(
        "train", "--data", str(penguins_csv), "--source-dir", str(tmp_path), "--store", store
    )
    assert code == 2
    assert flat("--source-dir goes with --script") in flat(output)


def test_hyperparameters_become_arguments_as_the_training_toolkit_makes_them() -> None:
    """sagemaker_training.mapping.to_cmd_args: keys sorted, ``-k`` for one letter, ``str()`` of
    the value (a list as Python prints it), a mapping as ``k=v,...``, None as empty."""
    hyperparameters = {
        "n": 3,
        "drop": ["a", "b"],
        "flag": True,
        "none": None,
        "map": {"b": 2, "a": 1},
    }
    assert to_cmd_args(hyperparameters) == [
        *("--drop", "['a', 'b']", "--flag", "True", "--map", "a=1,b=2"),
        *("-n", "3", "--none", ""),
    ]
