"""Run the training job locally under the SageMaker script-mode contract.

The job runs as a child process (``python -m lambdaserve.training.job``) in a temporary directory
laid out like ``/opt/ml``, with the same ``SM_*`` environment variables SageMaker sets, so what is
tested here is the contract the SageMaker training job uses.
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
from lambdaserve.kernel.errors import TrainingError
from lambdaserve.local.artifact_store import LocalArtifactStore

STAGE_PREFIX = "lambdaserve-stage:"
JOB_MODULE = "lambdaserve.training.job"


@dataclass(frozen=True)
class JobOutput:
    model_dir: Path
    output_data_dir: Path
    log: str


@contextmanager
def run_training_job(
    data: Path,
    hyperparameters: Mapping[str, object],
    on_stage: Callable[[str], None] | None = None,
) -> Iterator[JobOutput]:
    """Yield the job's outputs while its temporary ``/opt/ml`` tree still exists."""
    if not data.exists():
        raise TrainingError(f"training data {data} does not exist")
    with tempfile.TemporaryDirectory(prefix="lambdaserve-train-") as tmp:
        opt_ml = Path(tmp)
        channel = opt_ml / "input" / "data" / "train"
        config_dir = opt_ml / "input" / "config"
        channel.mkdir(parents=True)
        config_dir.mkdir(parents=True)
        if data.is_dir():
            shutil.copytree(data, channel, dirs_exist_ok=True)
        else:
            shutil.copy2(data, channel / data.name)
        # As the SageMaker SDK writes it: every value JSON-encoded into a string.
        encoded = {key: json.dumps(value) for key, value in hyperparameters.items()}
        (config_dir / "hyperparameters.json").write_text(json.dumps(encoded))
        env = {
            **os.environ,
            "SM_CHANNEL_TRAIN": str(channel),
            "SM_INPUT_CONFIG_DIR": str(config_dir),
            "SM_MODEL_DIR": str(opt_ml / "model"),
            "SM_OUTPUT_DIR": str(opt_ml / "output"),
            "SM_OUTPUT_DATA_DIR": str(opt_ml / "output" / "data"),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("SM_HPS", None)
        log_lines = []
        with subprocess.Popen(  # the context closes the pipe (it leaked in a long-lived caller)
            [sys.executable, "-m", JOB_MODULE],
            env=env,
            cwd=tmp,
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
        failure = opt_ml / "output" / "failure"
        if code != 0:
            reason = failure.read_text().strip() if failure.is_file() else "".join(log_lines[-5:])
            raise TrainingError(f"training failed: {reason}")
        yield JobOutput(
            model_dir=opt_ml / "model",
            output_data_dir=opt_ml / "output" / "data",
            log="".join(log_lines),
        )


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
