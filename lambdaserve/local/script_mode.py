"""The user's training script run as SageMaker's training toolkit runs it in script mode.

The toolkit (``sagemaker-training``, in AWS's framework images) starts the entry point as
``python ENTRY --key value ...`` from ``/opt/ml/code`` (the copied source directory), with the
hyperparameters as those arguments (``mapping.to_cmd_args``), as ``SM_HPS`` and one
``SM_HP_<KEY>`` each (``mapping.to_env_vars``), and the code directory first on ``PYTHONPATH``.
This module reproduces that, and reports a failure as the script's, not as ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lambdaserve.kernel.errors import TrainingError
from lambdaserve.kernel.manifest import MANIFEST_FILE

#: How much of the script's stderr a failure shows.
STDERR_TAIL_LINES = 30
SAVE_MODEL_HINT = (
    'lambdaserve.save_model(model, path=os.environ["SM_MODEL_DIR"], name=args.model_name, X=...)'
)


@dataclass(frozen=True)
class UserScript:
    """The entry point (relative to its source directory) and the source directory SageMaker
    copies to ``/opt/ml/code``."""

    entry_point: str
    source_dir: Path

    @classmethod
    def locate(cls, script: Path, source_dir: Path | None = None) -> UserScript:
        """The script and its source directory (default: the script's own directory)."""
        if not script.is_file():
            raise TrainingError(f"training script {script} does not exist (or is not a file)")
        source = (source_dir or script.parent).resolve()
        if not source.is_dir():
            raise TrainingError(f"source directory {source} does not exist")
        try:
            entry = script.resolve().relative_to(source)
        except ValueError:
            raise TrainingError(
                f"training script {script} is not inside its source directory {source}: "
                "SageMaker runs the entry point from the copied source directory"
            ) from None
        return cls(entry_point=entry.as_posix(), source_dir=source)


@dataclass(frozen=True)
class ScriptRun:
    exit_code: int
    stdout: list[str]
    stderr: list[str]

    @property
    def log(self) -> str:
        return "".join(self.stdout + self.stderr)


def _text(value: object) -> str:
    """The toolkit's ``mapping._decode``: ``str()`` of the value, ``None`` as nothing."""
    return "" if value is None else str(value)


def to_cmd_args(hyperparameters: Mapping[str, object]) -> list[str]:
    """``--key value`` per hyperparameter, keys sorted (``-k`` for one-letter keys); a mapping
    value becomes ``k=v,...``, anything else its ``str()``: as the toolkit's ``to_cmd_args``."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        value = hyperparameters[key]
        args.append(f"--{key}" if len(key) > 1 else f"-{key}")
        if isinstance(value, Mapping):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append(_text(value))
    return args


def _env_value(value: object) -> str:
    """The toolkit's ``to_env_vars`` value: strings as they are, anything else compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def script_mode_environ(
    hyperparameters: Mapping[str, object], code_dir: Path, script: UserScript
) -> dict[str, str]:
    """The variables script mode adds to the job's (``SM_CHANNEL_TRAIN``, ``SM_MODEL_DIR``...)."""
    module = Path(script.entry_point)
    env = {
        "SM_HPS": _env_value(dict(hyperparameters)),
        "SM_USER_ARGS": _env_value(to_cmd_args(hyperparameters)),
        "SM_USER_ENTRY_POINT": script.entry_point,
        "SM_MODULE_NAME": module.with_suffix("").as_posix(),
        "SM_MODULE_DIR": str(code_dir),
        "SM_CHANNELS": _env_value(["train"]),
        "SM_CURRENT_HOST": "algo-1",
        "SM_HOSTS": _env_value(["algo-1"]),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        "PYTHONPATH": os.pathsep.join(
            [str(code_dir), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    env.update({f"SM_HP_{key.upper()}": _env_value(v) for key, v in hyperparameters.items()})
    return env


def _drain(stream: IO[str], into: list[str], on_output: Callable[[str], None] | None) -> None:
    for line in stream:
        into.append(line)
        if on_output is not None:
            on_output(line)


def run_script(
    script: UserScript,
    hyperparameters: Mapping[str, object],
    *,
    env: Mapping[str, str],
    cwd: Path,
    on_output: Callable[[str], None] | None = None,
) -> ScriptRun:
    """``python ENTRY --key value ...`` in ``cwd``; every line of output is passed to
    ``on_output`` as it comes, and kept (stderr apart, for the failure report)."""
    command = [sys.executable, script.entry_point, *to_cmd_args(hyperparameters)]
    stdout: list[str] = []
    stderr: list[str] = []
    with subprocess.Popen(
        command, env=dict(env), cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        reader = threading.Thread(target=_drain, args=(process.stderr, stderr, on_output))
        reader.start()
        _drain(process.stdout, stdout, on_output)
        reader.join()
        code = process.wait()
    return ScriptRun(exit_code=code, stdout=stdout, stderr=stderr)


def _tail(lines: Iterable[str]) -> str:
    kept = [line.rstrip("\n") for line in lines][-STDERR_TAIL_LINES:]
    return "\n".join(kept) if kept else "(it wrote nothing to stderr)"


def script_failure(script: UserScript, run: ScriptRun, failure_file: Path) -> str:
    """The script's own report: the SageMaker ``failure`` file when it wrote one, and the tail
    of its stderr (its traceback, for an uncaught exception)."""
    how = f"exit {run.exit_code}" if run.exit_code > 0 else f"killed by signal {-run.exit_code}"
    reason = failure_file.read_text().strip() if failure_file.is_file() else ""
    parts = [f"your script {script.entry_point} failed ({how}):"]
    if reason:
        parts.append(f"failure reason: {reason}")
    parts.append(_tail(run.stderr))
    return "\n".join(parts)


def check_bundle_written(script: UserScript, model_dir: Path) -> None:
    """A script that exits 0 must have written a bundle to ``SM_MODEL_DIR``."""
    if (model_dir / MANIFEST_FILE).is_file():
        return
    found = sorted(p.name for p in model_dir.iterdir()) if model_dir.is_dir() else []
    wrote = (
        f"wrote {', '.join(found)} but no lambdaserve bundle (no {MANIFEST_FILE})"
        if found
        else "wrote nothing"
    )
    raise TrainingError(
        f"your script {script.entry_point} exited 0 but {wrote} to SM_MODEL_DIR: save the "
        f"fitted model at its end with {SAVE_MODEL_HINT}"
    )
