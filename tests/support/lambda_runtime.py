"""Our functions as Lambda runs them, without Docker: AWS's Runtime Interface Emulator (from the
pinned aws-sam-cli wheel, fetched by ``make`` into ``.lambda-rie/``) runs the Python runtime
interface client (awslambdaric) on the built function asset and dependency layer.

What it reproduces of Lambda's python3.13 runtime: the task root and the layers mounted
read-only (a private mount namespace, so a write outside ``/tmp`` fails as it would on Lambda);
``sys.path`` of exactly the task root, each layer's ``python/`` and the managed runtime
(awslambdaric, snapshot_restore_py and the boto3 that Lambda provides, copied from this venv's
installed distributions), and none of the dev venv; the environment Lambda sets (``_HANDLER``,
``LAMBDA_TASK_ROOT``, ``AWS_LAMBDA_FUNCTION_*``, region) plus the function's own; one invocation
at a time over the emulator's HTTP invoke API. Its figures: the init duration and each
invocation's duration as the emulator logs them (``INIT REPORT``, ``INVOKE RTDONE``), and the
runtime process's peak RSS read from ``/proc`` (the emulator's ``Max Memory Used`` only repeats
the memory size).
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parents[2]
EMULATOR_DIR = REPO_ROOT / ".lambda-rie"
#: The distributions Lambda's python3.13 managed runtime provides (never in our layers).
MANAGED_RUNTIME = (
    "awslambdaric",
    "simplejson",
    "snapshot-restore-py",
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
)
_INIT = re.compile(r"INIT REPORT\(durationMs: ([0-9.]+)\)")
_INVOKE = re.compile(r"INVOKE RTDONE\(status: (\w+), produced bytes: \d+, duration: ([0-9.]+)ms\)")


def machine_arch() -> Literal["arm64", "x86_64"]:
    """The layer architecture this machine runs (``x86_64`` or ``arm64``)."""
    return "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"


def emulator_binary() -> Path | None:
    """The emulator for this machine, when ``make`` has fetched it."""
    binary = EMULATOR_DIR / f"aws-lambda-rie-{machine_arch()}"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


def read_only_mounts_work() -> bool:
    """Whether this process may make a private mount namespace (root, and unshare allowed)."""
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False, timeout=10)
    return probe.returncode == 0


def build_managed_runtime(out: Path) -> Path:
    """What Lambda's runtime puts on ``sys.path`` besides the task and layers, from this venv."""
    for name in MANAGED_RUNTIME:
        dist = metadata.distribution(name)
        for entry in dist.files or ():
            relative = Path(str(entry))
            if relative.parts[0] == ".." or "__pycache__" in relative.parts:
                continue
            if relative.parts[0].endswith((".dist-info", ".data")):
                continue
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(str(dist.locate_file(entry))), target)
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Invocation:
    payload: Any
    duration_ms: float | None
    status: str
    http_status: int = 200


@dataclass
class EmulatedFunction:
    """One function's execution environment under the emulator (a context manager)."""

    task_root: Path
    layer_roots: tuple[Path, ...]
    runtime_root: Path
    handler: str
    environment: dict[str, str]
    name: str = "lambdaserve-test-function"
    memory_mb: int = 1024
    read_only: bool = True
    log_path: Path | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _port: int = field(default=0, init=False, repr=False)
    _seen: int = field(default=0, init=False, repr=False)

    def __enter__(self) -> EmulatedFunction:
        binary = emulator_binary()
        if binary is None:
            raise RuntimeError(f"no emulator in {EMULATOR_DIR}: run `make .lambda-rie/.complete`")
        self._port = _free_port()
        self.log_path = self.log_path or self.task_root.parent / f"{self.name}.log"
        command = [
            str(binary),
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{self._port}",
            # the Runtime API the client polls: its own port too, so emulators run side by side
            "--runtime-api-address",
            f"127.0.0.1:{_free_port()}",
            # Lambda's interpreter, without this venv's site-packages: sys.path is PYTHONPATH.
            sys._base_executable,  # type: ignore[attr-defined]
            "-S",
            "-m",
            "awslambdaric",
            self.handler,
        ]
        if self.read_only:
            mounts = " && ".join(
                f"mount --bind {p} {p} && mount -o remount,bind,ro {p}"
                for p in (self.task_root, *self.layer_roots, self.runtime_root)
            )
            command = ["unshare", "-m", "sh", "-c", f'{mounts} && exec "$@"', "sh", *command]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                cwd=self.task_root,
                env=self._lambda_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_listening()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def _lambda_environment(self) -> dict[str, str]:
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "HOME": "/tmp",
            "LAMBDA_TASK_ROOT": str(self.task_root),
            "LAMBDA_RUNTIME_DIR": str(self.runtime_root),
            "_HANDLER": self.handler,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            # Lambda merges layers into /opt/python: one entry per layer is the same path
            "PYTHONPATH": ":".join(
                str(p)
                for p in (
                    self.task_root,
                    *(layer / "python" for layer in self.layer_roots),
                    self.runtime_root,
                )
            ),
            "PYTHONDONTWRITEBYTECODE": "1",
            **self.environment,
        }

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"the emulator exited: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self._port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the emulator did not listen: {self.log()}")

    def invoke(self, event: Any, *, timeout: float = 120) -> Invocation:
        """One invocation, as API Gateway, Step Functions or the scheduler make it."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self._port}/2015-03-31/functions/function/invocations",
            data=json.dumps(event).encode(),
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = json.loads(response.read() or b"null")
        except urllib.error.HTTPError as failed:  # the emulator's answer to a failed init
            body = failed.read()
            return Invocation(
                payload=json.loads(body) if body.strip().startswith(b"{") else body.decode(),
                duration_ms=None,
                status="error",
                http_status=failed.code,
            )
        status, duration = self._last_invoke()
        return Invocation(payload=payload, duration_ms=duration, status=status)

    def _last_invoke(self) -> tuple[str, float]:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            found = _INVOKE.findall(self.log())
            if len(found) > self._seen:
                self._seen = len(found)
                status, duration = found[-1]
                return status, float(duration)
            time.sleep(0.02)
        raise RuntimeError(f"no INVOKE RTDONE line: {self.log()}")

    @property
    def init_ms(self) -> float:
        """The init phase as the emulator reports it (imports, model load, app build)."""
        match = _INIT.search(self.log())
        if match is None:
            raise RuntimeError(f"no INIT REPORT line: {self.log()}")
        return float(match[1])

    def peak_rss_mb(self) -> float:
        """The runtime process's peak resident memory (VmHWM), while it lives."""
        assert self._process is not None
        for child in _descendants(self._process.pid):
            status = Path(f"/proc/{child}/status").read_text()
            if "python" in Path(f"/proc/{child}/comm").read_text():
                (kilobytes,) = re.findall(r"VmHWM:\s+(\d+) kB", status)
                return int(kilobytes) / 1024
        raise RuntimeError("the runtime process is not running")

    def log(self) -> str:
        assert self.log_path is not None
        return self.log_path.read_text(errors="replace")


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        # every thread's children: the emulator (Go) starts the runtime from any thread
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            kids = [int(k) for k in children.read_text().split()]
            found.extend(kids)
            pending.extend(kids)
    return found
