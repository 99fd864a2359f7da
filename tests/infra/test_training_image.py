"""The training job runs the way AWS's scikit-learn image runs it, on that image's Python.

What runs here: a Python 3.12 venv holding what ``sagemaker-scikit-learn:1.4-2-py312-cpu-py3``
pre-installs (training/framework-image.txt: numpy 2.1, scikit-learn 1.4.2, pandas 2.3, pyarrow 17
and the SageMaker training toolkit); the toolkit's own ``train`` command (the image's training
entry; its scikit-learn module is three lines calling the same ``entry_point.run``); an
``/opt/ml``-shaped directory (``SAGEMAKER_BASE_DIR``) whose ``hyperparameters.json`` is the
``HyperParameters`` block of the synthesized state machine with an execution input applied; and
the source archive CDK staged for the stack, placed in the ``code`` channel as SageMaker copies
it there. The job runs as with network isolation: no S3 endpoint, no package index, no wheels but
the archive's own, and every proxy pointed at a closed port, so any network use fails the run.
The toolkit pip-installs the archive's ``requirements.txt`` over the image's packages from the
archive's ``wheels/``. The bundle it writes is then imported into a store as SageMaker's
``model.tar.gz`` and verified by the Python 3.13 code that serves it.

Not emulated: SageMaker itself (channel download, instance, IAM, upload of ``/opt/ml/model``,
which the test does the way SageMaker does: a tar.gz of the directory).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lambdaserve.datasets import churn
from lambdaserve.local.artifact_store import LocalArtifactStore
from lambdaserve.registry.importing import import_bundle
from lambdaserve.serving.app import create_app
from lambdaserve.serving.model_loader import LoadedModel
from tests.infra.conftest import Synthesized, synthesize
from training import framework_image

pytestmark = pytest.mark.infra

ACCOUNT = "123456789012"
ARTIFACTS = "lambdaserve-dev-artifacts-test"
EXECUTION = {
    "job_name": "churn-2026-11-27",
    "train_s3_uri": f"s3://{ARTIFACTS}/datasets/churn/",
    "target": churn.TARGET,
    "model_name": "churn",
    "estimator": "random_forest",
}


@dataclass(frozen=True)
class Image:
    python: Path
    wheelhouse: Path

    @property
    def train(self) -> Path:
        return self.python.parent / "train"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    root = os.environ.get("LAMBDASERVE_WHEELHOUSE")
    if not root:
        pytest.skip("needs the wheelhouse `make test` fetches (LAMBDASERVE_WHEELHOUSE)")
    wheelhouse = Path(root) / framework_image.WHEELHOUSE_SUBDIR
    assert wheelhouse.is_dir(), f"{wheelhouse} is missing: run `make test` (it fetches it)"
    python = framework_image.find_python()
    assert python is not None, "no Python 3.12 interpreter: the image's Python is needed here"
    venv = tmp_path_factory.mktemp("sklearn-image") / "venv"
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    installed = subprocess.run(
        [*pip, "-r", str(framework_image.PREINSTALLED)],
        env=_pip_env(wheelhouse),
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    return Image(venv / "bin" / "python", wheelhouse)


def _pip_env(wheelhouse: Path) -> dict[str, str]:
    """pip reads only the wheelhouse, and none of this machine's pip configuration."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    keep.pop("VIRTUAL_ENV", None)
    return {
        **keep,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheelhouse),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The dev stage with the training stack's asset really built (sourcedir.tar.gz)."""
    return synthesize(
        tmp_path_factory.mktemp("cdk-training"), "dev", bundling_stacks=["lambdaserve-dev-training"]
    )


def _resolve(value: Any, region: str) -> str:
    """Render a CloudFormation string expression with this test's account, region and bucket."""
    if isinstance(value, str):
        return value
    ((function, argument),) = value.items()
    if function == "Fn::Join":
        separator, parts = argument
        return str(separator).join(_resolve(part, region) for part in parts)
    if function == "Fn::Sub":
        known = {"AWS::AccountId": ACCOUNT, "AWS::Region": region, "AWS::Partition": "aws"}
        return re.sub(r"\$\{([^}]+)\}", lambda m: known[m.group(1)], argument)
    if function == "Ref":
        return {"AWS::Partition": "aws", "AWS::Region": region, "AWS::AccountId": ACCOUNT}[argument]
    if function == "Fn::GetAtt":
        return f"arn:aws:iam::{ACCOUNT}:role/{argument[0]}"
    if function == "Fn::ImportValue" and "Artifacts" in argument:
        return ARTIFACTS
    raise AssertionError(f"unexpected expression {value!r}")


def training_request(synth: Synthesized) -> dict[str, Any]:
    """The Train state's CreateTrainingJob parameters, with EXECUTION applied to ``.$`` keys."""
    resources = synth.template_json("training")["Resources"]
    (machine,) = [r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    definition = json.loads(
        _resolve(machine["Properties"]["DefinitionString"], synth.config.region)
    )
    # The first state merges the input over the optional inputs' defaults (States.JsonMerge:
    # the input's values win), as Step Functions would before Train reads it.
    assert definition["StartAt"] == "WithDefaults"
    merge = definition["States"]["WithDefaults"]["Parameters"]["merged.$"]
    found = re.search(r"StringToJson\('(.*)'\), \$, false\)$", merge)
    assert found is not None, merge
    execution = {**json.loads(found.group(1)), **EXECUTION}

    def apply(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key.removesuffix(".$"): (
                    execution[value.removeprefix("$.")] if key.endswith(".$") else apply(value)
                )
                for key, value in node.items()
            }
        return [apply(item) for item in node] if isinstance(node, list) else node

    return apply(definition["States"]["Train"]["Parameters"])  # type: ignore[no-any-return]


def _opt_ml(root: Path, request: dict[str, Any], rows: int, seed: int) -> Path:
    """Lay out /opt/ml as SageMaker does before it starts the container."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    # The container's /opt/ml is ``root`` here (SAGEMAKER_BASE_DIR): so are paths into it.
    hyperparameters = {
        key: value.replace("/opt/ml/", f"{root}/", 1) if value.startswith("/opt/ml/") else value
        for key, value in request["HyperParameters"].items()
    }
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    channels = {
        channel["ChannelName"]: {
            "TrainingInputMode": request["AlgorithmSpecification"]["TrainingInputMode"],
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        }
        for channel in request["InputDataConfig"]
    }
    (config / "inputdataconfig.json").write_text(json.dumps(channels))
    # SageMaker names the host algo-1, which resolves only inside its cluster network; the
    # toolkit waits for every host's name to resolve, so the one host here is localhost.
    instance_type = request["ResourceConfig"]["InstanceType"]
    (config / "resourceconfig.json").write_text(
        json.dumps(
            {
                "current_host": "localhost",
                "hosts": ["localhost"],
                "current_instance_type": instance_type,
                "current_group_name": "homogeneousCluster",
                "instance_groups": [
                    {
                        "instance_group_name": "homogeneousCluster",
                        "instance_type": instance_type,
                        "hosts": ["localhost"],
                    }
                ],
                "network_interface_name": "eth0",
            }
        )
    )
    # What SageMaker copies from train_s3_uri (s3://<artifacts>/datasets/...) into the channel.
    data = root / "input" / "data" / "train"
    data.mkdir(parents=True)
    churn.write_churn_csv(data / "churn.csv", rows, seed=seed)
    return root


def _stage_source(synth: Synthesized, request: dict[str, Any], base: Path) -> None:
    """Copy the archive CDK staged for the training stack into the code channel, where
    SageMaker puts the object the channel names (under its key's last part)."""
    (code,) = [c for c in request["InputDataConfig"] if c["ChannelName"] == "code"]
    uri = code["DataSource"]["S3DataSource"]["S3Uri"]
    key = uri.removeprefix("s3://").partition("/")[2]
    assets = json.loads((synth.outdir / "lambdaserve-dev-training.assets.json").read_text())
    (source,) = [
        asset["source"]["path"]
        for asset in assets["files"].values()
        if any(d["objectKey"] == key for d in asset["destinations"].values())
    ]
    channel = base / "input" / "data" / "code"
    channel.mkdir(parents=True)
    shutil.copyfile(synth.outdir / source, channel / key.rsplit("/", 1)[-1])


def _run_job(image: Image, base: Path, region: str) -> subprocess.CompletedProcess[str]:
    """The image's ``train`` as under network isolation: pip has no index and no wheels but
    the archive's, there is no S3 endpoint, and every proxy is a closed port on loopback."""
    closed = "http://127.0.0.1:9"
    env = {
        **{k: v for k, v in _pip_env(image.wheelhouse).items() if k != "PIP_FIND_LINKS"},
        "SAGEMAKER_BASE_DIR": str(base),
        "AWS_REGION": region,
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "ALL_PROXY": closed,
        "NO_PROXY": "",
        "PATH": f"{image.python.parent}:{os.environ['PATH']}",
    }
    return subprocess.run(
        [str(image.train)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_the_stacks_job_runs_in_the_sklearn_image_and_its_bundle_serves(
    image: Image, synthesized: Synthesized, tmp_path: Path
) -> None:
    request = training_request(synthesized)
    assert request["AlgorithmSpecification"]["TrainingImage"].endswith(
        "/sagemaker-scikit-learn:1.4-2-py312-cpu-py3"
    )
    assert request["EnableNetworkIsolation"] is True
    submit = request["HyperParameters"]["sagemaker_submit_directory"]
    # The archive itself, in the code channel: the toolkit makes no S3 call to get it.
    assert submit.startswith("/opt/ml/input/data/code/") and submit.endswith(".gz")
    base = _opt_ml(tmp_path / "opt_ml", request, rows=1500, seed=11)
    _stage_source(synthesized, request, base)

    result = _run_job(image, base, synthesized.config.region)

    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert (base / "output" / "success").exists(), log[-4000:]
    assert "Installing dependencies from requirements.txt" in log  # over the image's packages
    # SageMaker uploads /opt/ml/model as model.tar.gz; import it as a user would.
    model_tar = tmp_path / "model.tar.gz"
    with tarfile.open(model_tar, "w:gz") as tar:
        tar.add(base / "model", arcname=".")
    local = LocalArtifactStore(tmp_path / "store")
    stored, created = import_bundle(local, str(model_tar), cache_dir=local.cache_dir)
    assert created and stored.name == "churn"
    versions = stored.manifest.library_versions
    assert versions["python"].startswith("3.12.")  # trained on the image's Python
    assert versions["scikit-learn"] == "1.9.1"  # our pin, installed over the image's 1.4.2
    assert versions["numpy"] == "2.5.5"
    assert stored.manifest.metrics["roc_auc"] > 0.7
    assert stored.manifest.preferred_runtime == "onnx"
    # Served by the Python 3.13 code, ONNX Runtime first.
    model = LoadedModel.from_bundle(LocalArtifactStore(tmp_path / "store").open("churn"))
    rows = churn.generate_churn(5, seed=99, dirty=False).drop(
        columns=[churn.TARGET, churn.ID_COLUMN]
    )
    instances = json.loads(rows.to_json(orient="records"))
    response = TestClient(create_app(model)).post("/predict/batch", json={"instances": instances})
    assert response.status_code == 200, response.text
    scores = [p["probability"] for p in response.json()["predictions"]]
    assert len(scores) == 5 and all(0.0 <= s <= 1.0 for s in scores)


def test_a_failed_job_reports_our_reason_to_sagemaker(
    image: Image, synthesized: Synthesized, tmp_path: Path
) -> None:
    request = training_request(synthesized)
    request["HyperParameters"]["target"] = "no_such_column"
    base = _opt_ml(tmp_path / "opt_ml", request, rows=300, seed=3)
    _stage_source(synthesized, request, base)

    result = _run_job(image, base, synthesized.config.region)

    assert result.returncode != 0
    # The first 1024 characters of this file become the job's FailureReason.
    reason = (base / "output" / "failure").read_text()
    assert "no_such_column" in reason[:1024], reason[:1024]
    assert not (base / "output" / "success").exists()
    assert not list((base / "model").glob("manifest.json"))
