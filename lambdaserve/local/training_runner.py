"""Run training locally under the SageMaker script-mode contract: the built-in job, or the user's
own script.

Either runs as a child process in a temporary directory laid out like ``/opt/ml``, with the same
``SM_*`` environment variables SageMaker sets, so what is tested here is the contract the
SageMaker training job uses. The built-in job is ``python -m lambdaserve.training.job``; a user's
script runs as SageMaker's training toolkit runs it (``lambdaserve.local.script_mode``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lambdaserve.kernel.artifacts import StoredBundle
from lambdaserve.kernel.bundle import verify_bundle
from lambdaserve.kernel.errors import TrainingError
from lambdaserve.local.artifact_store import LocalArtifactStore
from lambdaserve.local.script_mode import (
    UserScript,
    check_bundle_written,
    run_script,
    script_failure,
    script_mode_environ,
)
from lambdaserve.local.script_requirements import check_requirements
from lambdaserve.training.sagemaker_env import SageMakerPaths

STAGE_PREFIX = "lambdaserve-stage:"
JOB_MODULE = "lambdaserve.training.job"
#: Left out of the copy to /opt/ml/code: caches, VCS data, virtualenvs and a store of ours.
SOURCE_IGNORE = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".venv", ".lambdaserve")


@dataclass(frozen=True)
class JobOutput:
    model_dir: Path
    output_data_dir: Path
    log: str


@dataclass(frozen=True)
class _OptMl:
    """One temporary ``/opt/ml`` tree."""

    root: Path

    @property
    def paths(self) -> SageMakerPaths:
        output = self.root / "output"
        return SageMakerPaths(
            train_channel=self.root / "input" / "data" / "train",
            model_dir=self.root / "model",
            output_data_dir=output / "data",
            output_dir=output,
        )

    @property
    def config_dir(self) -> Path:
        return self.root / "input" / "config"

    @property
    def code_dir(self) -> Path:
        return self.root / "code"

    def environ(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.paths.as_environ(),
            "SM_INPUT_DIR": str(self.root / "input"),
            "SM_INPUT_CONFIG_DIR": str(self.config_dir),
            "PYTHONUNBUFFERED": "1",
        }

    def output(self, log: str) -> JobOutput:
        paths = self.paths
        return JobOutput(model_dir=paths.model_dir, output_data_dir=paths.output_data_dir, log=log)


@contextmanager
def _opt_ml(data: Path, hyperparameters: Mapping[str, object]) -> Iterator[_OptMl]:
    """A temporary ``/opt/ml`` holding the data channel and ``hyperparameters.json``."""
    if not data.exists():
        raise TrainingError(f"training data {data} does not exist")
    with tempfile.TemporaryDirectory(prefix="lambdaserve-train-") as tmp:
        opt_ml = _OptMl(Path(tmp))
        channel = opt_ml.paths.train_channel
        channel.mkdir(parents=True)
        opt_ml.config_dir.mkdir(parents=True)
        if data.is_dir():
            shutil.copytree(data, channel, dirs_exist_ok=True)
        else:
            shutil.copy2(data, channel / data.name)
        # As the SageMaker SDK writes it: every value JSON-encoded into a string.
        encoded = {key: json.dumps(value) for key, value in hyperparameters.items()}
        (opt_ml.config_dir / "hyperparameters.json").write_text(json.dumps(encoded))
        yield opt_ml


@contextmanager
def run_training_job(
    data: Path,
    hyperparameters: Mapping[str, object],
    on_stage: Callable[[str], None] | None = None,
) -> Iterator[JobOutput]:
    """Yield the built-in job's outputs while its temporary ``/opt/ml`` tree still exists."""
    with _opt_ml(data, hyperparameters) as opt_ml:
        env = opt_ml.environ()
        env.pop("SM_HPS", None)
        log_lines = []
        with subprocess.Popen(  # the context closes the pipe (it leaked in a long-lived caller)
            [sys.executable, "-m", JOB_MODULE],
            env=env,
            cwd=opt_ml.root,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                if line.startswith(STAGE_PREFIX):
                    if on_stage is not None:
                        on_stage(line[len(STAGE_PREFIX) :].strip())
                else:
                    log_lines.append(line)
            code = process.wait()
        failure = opt_ml.paths.failure_file
        if code != 0:
            reason = failure.read_text().strip() if failure.is_file() else "".join(log_lines[-5:])
            raise TrainingError(f"training failed: {reason}")
        yield opt_ml.output("".join(log_lines))


@contextmanager
def run_script_job(
    script: UserScript,
    data: Path,
    hyperparameters: Mapping[str, object],
    on_output: Callable[[str], None] | None = None,
) -> Iterator[JobOutput]:
    """Run the user's script as SageMaker script mode does and yield its outputs (a bundle in
    ``model_dir``) while the temporary ``/opt/ml`` tree still exists.

    The source directory is copied to ``/opt/ml/code``, the working directory; the script gets
    the hyperparameters as ``--key value`` arguments and in ``SM_HPS``/``SM_HP_*``. Refused
    before anything runs: requirements the environment does not satisfy (nothing is installed).
    """
    check_requirements(script.source_dir / "requirements.txt")
    with _opt_ml(data, hyperparameters) as opt_ml:
        code_dir = opt_ml.code_dir
        shutil.copytree(script.source_dir, code_dir, ignore=SOURCE_IGNORE)
        paths = opt_ml.paths
        for directory in (paths.model_dir, paths.output_data_dir):
            directory.mkdir(parents=True)  # SageMaker creates them before the script starts
        env = {**opt_ml.environ(), **script_mode_environ(hyperparameters, code_dir, script)}
        run = run_script(script, hyperparameters, env=env, cwd=code_dir, on_output=on_output)
        if run.exit_code != 0:
            raise TrainingError(script_failure(script, run, paths.failure_file))
        check_bundle_written(script, paths.model_dir)
        yield opt_ml.output(run.log)


def train_and_store(
    store: LocalArtifactStore,
    data: Path,
    hyperparameters: Mapping[str, object],
    *,
    on_stage: Callable[[str], None] | None = None,
) -> StoredBundle:
    """Train under the SageMaker contract as the store's next version and store the bundle."""
    name = str(hyperparameters["model_name"])
    numbered = {**hyperparameters, "model_version": store.next_version(name)}
    with run_training_job(data, numbered, on_stage=on_stage) as job:
        return store.put(job.model_dir)


def train_script_and_store(
    store: LocalArtifactStore,
    script: UserScript,
    data: Path,
    hyperparameters: Mapping[str, object],
    *,
    on_output: Callable[[str], None] | None = None,
) -> StoredBundle:
    """Run the user's script with ``model_name`` and the store's next ``model_version`` among its
    hyperparameters, and store the bundle it wrote under its manifest's name and version (which
    must be ``model_name``: the model the caller asked for)."""
    name = str(hyperparameters["model_name"])
    numbered = {**hyperparameters, "model_version": store.next_version(name)}
    with run_script_job(script, data, numbered, on_output=on_output) as job:
        written = verify_bundle(job.model_dir).manifest.name
        if written != name:
            raise TrainingError(
                f"your script {script.entry_point} saved a model named {written!r}, but this "
                f"training is for {name!r} (--name): pass name=args.model_name (the model_name "
                f"hyperparameter) to lambdaserve.save_model, or train with --name {written}"
            )
        return store.put(job.model_dir)
