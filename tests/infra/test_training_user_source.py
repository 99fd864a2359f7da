"""A stage's ``training_source``: the user's script directory takes our ``train.py``'s place in
the SageMaker source archive, with lambdaserve's packages and their requirements resolved
against our pins (offline: the wheelhouse is the only index), the rest of the job unchanged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from palmerpenguins import load_penguins

from lambdaserve.kernel.bundle import verify_bundle
from layers.lock_export import TRAINING_REQUIREMENTS
from tests.infra.conftest import Synthesized, synthesize
from training.source_bundle import OFFLINE_HEADER, build
from training.user_requirements import TrainingSourceError, read_user_requirements

pytestmark = pytest.mark.infra

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "penguins"
ENTRY = "fit_penguins.py"
TRAINING_STACK = "lambdaserve-dev-training"
#: Beyond our pins: boto3 and what it needs that we do not pin (python-dateutil and six we do).
BEYOND = ("boto3", "botocore", "jmespath", "s3transfer", "urllib3")


@pytest.fixture(scope="module", autouse=True)
def _offline() -> None:
    if not os.environ.get("LAMBDASERVE_WHEELHOUSE"):
        pytest.skip("needs the wheelhouse `make test` fetches (LAMBDASERVE_WHEELHOUSE)")


def user_source(root: Path, requirements: str) -> Path:
    """The penguins example as a user's project: its script under another name, a nested data
    file, caches and a virtualenv that stay out."""
    source = root / "project"
    source.mkdir(parents=True)
    shutil.copyfile(EXAMPLE / "train.py", source / ENTRY)
    (source / "requirements.txt").write_text(requirements)
    (source / "conf").mkdir()
    (source / "conf" / "columns.json").write_text('{"target": "species"}\n')
    for junk in ("__pycache__/fit_penguins.cpython-313.pyc", ".venv/lib/site.py"):
        (source / junk).parent.mkdir(parents=True, exist_ok=True)
        (source / junk).write_text("junk")
    return source


def stage(source: Path, entry_point: str = ENTRY) -> dict[str, object]:
    return {"training_source": {"path": str(source), "entry_point": entry_point}}


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The dev stage with a training_source, its training asset really built."""
    source = user_source(
        tmp_path_factory.mktemp("user"),
        "scikit-learn\npandas>=2\nboto3  # not ours\nlambdaserve>=0.1  # shipped as source\n",
    )
    return synthesize(
        tmp_path_factory.mktemp("cdk-user-source"),
        "dev",
        stage(source),
        bundling_stacks=[TRAINING_STACK],
    )


def _definition(synth: Synthesized) -> str:
    resources = synth.template_json("training")["Resources"]
    (machine,) = [r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    return json.dumps(machine["Properties"]["DefinitionString"])


@pytest.fixture(scope="module")
def archive(bundled: Synthesized) -> Path:
    """The sourcedir.tar.gz CDK staged for the training stack."""
    assets = json.loads((bundled.outdir / f"{TRAINING_STACK}.assets.json").read_text())
    paths = [asset["source"]["path"] for asset in assets["files"].values()]
    (path,) = [p for p in paths if not p.endswith(".template.json")]
    return bundled.outdir / path


def test_the_stack_runs_the_users_entry_point_from_the_code_channel(bundled: Synthesized) -> None:
    definition = _definition(bundled)
    assert f'\\"sagemaker_program\\":\\"{ENTRY}\\"' in definition
    assert '\\"sagemaker_submit_directory\\":\\"/opt/ml/input/data/code/' in definition
    assert '\\"EnableNetworkIsolation\\":true' in definition
    assert '\\"target.$\\":\\"$.target\\"' in definition  # the job's hyperparameters as before


def test_the_archive_holds_the_users_directory_our_packages_and_the_resolved_wheels(
    archive: Path,
) -> None:
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        requirements = tar.extractfile("requirements.txt").read().decode()  # type: ignore[union-attr]
    assert {ENTRY, "conf/columns.json", "requirements.txt"} <= names
    assert {"lambdaserve/__init__.py", "lambdaserve/training/saving.py"} <= names
    assert "lambdaserve/kernel/bundle.py" in names and "train.py" not in names  # not ours
    assert not any(n.startswith((".venv", "__pycache__", "lambdaserve/cli")) for n in names)
    # Our pins verbatim (the job installs exactly them), then what the user adds, pinned.
    ours = OFFLINE_HEADER + TRAINING_REQUIREMENTS.read_text()
    assert requirements.startswith(ours)
    added = requirements.removeprefix(ours)
    pinned = [line.split("==")[0] for line in added.splitlines() if "==" in line]
    assert pinned == list(BEYOND)
    assert added.count("--hash=sha256:") >= len(BEYOND)
    wheels = {n.removeprefix("wheels/").split("-")[0].lower() for n in names if "wheels/" in n}
    assert set(BEYOND) | {"scikit_learn", "pandas", "skops"} <= wheels
    assert "lambdaserve" not in wheels


def test_the_users_entry_point_saves_a_bundle_from_the_extracted_archive(
    archive: Path, tmp_path: Path
) -> None:
    """``import lambdaserve; lambdaserve.save_model`` works from the archive alone."""
    with tarfile.open(archive) as tar:
        code = [m for m in tar.getmembers() if not m.name.startswith("wheels/")]
        tar.extractall(tmp_path / "code", members=code, filter="data")
    channel = tmp_path / "input" / "data" / "train"
    channel.mkdir(parents=True)
    load_penguins().to_csv(channel / "penguins.csv", index=False)
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        "PYTHONPATH": str(tmp_path / "code"),  # lambdaserve from the archive only
        "SM_CHANNEL_TRAIN": str(channel),
        "SM_MODEL_DIR": str(tmp_path / "model"),
    }
    probe = "import lambdaserve.training.saving as s; print(s.__file__)"
    where = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path / "code",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(tmp_path / "code"))
    args = ["--max_iter", "15", "--model_name", "penguins", "--model_version", "7"]
    result = subprocess.run(
        [sys.executable, ENTRY, *args],
        cwd=tmp_path / "code",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = verify_bundle(tmp_path / "model").manifest
    assert (manifest.name, manifest.version) == ("penguins", "7")
    assert manifest.estimator.params["max_iter"] == 15


def test_a_requirement_conflicting_with_a_pin_fails_the_synth_naming_both(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    source = user_source(tmp_path / "user", "pandas>=2\nscikit-learn<1.0\n")
    with pytest.raises(RuntimeError, match="Failed to bundle asset"):
        synthesize(tmp_path / "cdk", "dev", stage(source), bundling_stacks=[TRAINING_STACK])
    reason = capfd.readouterr().err
    assert "your requirement scikit-learn<1.0 conflicts with our pin scikit-learn==1.9.1" in reason
    assert "pandas" not in reason  # our pin satisfies pandas>=2


def test_requirements_that_do_not_resolve_offline_are_refused(tmp_path: Path) -> None:
    source = user_source(tmp_path / "user", "no-such-package-for-lambdaserve-tests>=1\n")
    with pytest.raises(TrainingSourceError, match="does not resolve") as caught:
        build(tmp_path / "out", source, ENTRY)
    assert "no-such-package-for-lambdaserve-tests" in str(caught.value)
    assert not (tmp_path / "out" / "sourcedir.tar.gz").exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--extra-index-url https://example.com/simple", "only requirement specifiers"),
        ("pkg @ https://example.com/pkg-1.0-py3-none-any.whl", "URL requirements"),
        ("scikit-learn>>1", "is not a requirement"),
    ],
)
def test_what_cannot_install_offline_is_refused(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text(f"pandas>=2\n{line}\n")
    with pytest.raises(TrainingSourceError, match=message):
        read_user_requirements(path)


def test_a_source_without_its_entry_point_fails_the_synth(tmp_path: Path) -> None:
    source = user_source(tmp_path / "user", "")
    with pytest.raises(ValueError, match=r"holds no entry point 'train\.py'"):
        synthesize(tmp_path / "cdk", "dev", stage(source, "train.py"))
