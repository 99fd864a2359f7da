"""A stage's ``training_source`` requirements resolved against our pins, for its source archive.

The job installs ``training/requirements.txt`` (exported from uv.lock) over AWS's image, offline,
from the archive's own wheels. The user's ``requirements.txt`` may name more: each of its
requirements must accept our pin of the package (our pins are constraints: the job installs
exactly them), and what they add beyond our pins is resolved with uv (``uv pip compile``, our
pins as constraints, for the image's CPython 3.12 on manylinux x86_64, wheels only) and pinned
with hashes, so its wheels join ours in the archive. With ``$LAMBDASERVE_WHEELHOUSE`` set the
wheelhouse's ``py312/`` is the only index (offline); otherwise the package index is.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from training import framework_image

REPO_ROOT = Path(__file__).resolve().parent.parent
PINS = REPO_ROOT / "training" / "requirements.txt"
#: The source archive ships lambdaserve's own source: a requirement on it is met, not installed.
SHIPPED = "lambdaserve"
#: layers.lock_export.LOCAL_UV and UV_ENV (not imported: layers imports this package).
LOCAL_UV = REPO_ROOT / ".uv" / "bin" / "uv"
UV_ENV = "UV"
#: The training image: CPython 3.12 on Ubuntu 24.04 (glibc 2.39), x86_64.
PLATFORM = "x86_64-manylinux_2_39"
IMAGE_ENVIRONMENT = {
    "python_version": framework_image.PYTHON,
    "python_full_version": f"{framework_image.PYTHON}.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
_COMMENT = re.compile(r"(^|\s)#.*$")


class TrainingSourceError(RuntimeError):
    """A stage's training source cannot be archived: its requirements are unreadable, conflict
    with our pins or do not resolve, or the directory lacks its entry point."""


def read_pins(path: Path = PINS) -> dict[str, str]:
    """Canonical name -> pinned version, from a file exported from uv.lock."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            requirement = Requirement(line.rstrip("\\").strip())
            (specifier,) = requirement.specifier
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def shipped_version() -> str:
    """lambdaserve's version (pyproject.toml), the source the archive carries."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return str(project["version"])


def read_user_requirements(path: Path) -> list[Requirement]:
    """Requirement specifiers only: the job installs offline, so index options, editable or
    URL requirements and included files have no meaning there."""
    requirements: list[Requirement] = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        where = f"{path}:{number}: {line!r}"
        if line.startswith("-"):
            raise TrainingSourceError(
                f"{where}: only requirement specifiers are supported (the job installs offline, "
                "from wheels resolved at synth)"
            )
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise TrainingSourceError(f"{where} is not a requirement: {exc}") from None
        if requirement.url:
            raise TrainingSourceError(f"{where}: URL requirements cannot be resolved offline")
        requirements.append(requirement)
    return requirements


def _applies(requirement: Requirement) -> bool:
    marker: Marker | None = requirement.marker
    return marker is None or marker.evaluate({**IMAGE_ENVIRONMENT, "extra": ""})


def check_against_pins(
    requirements: list[Requirement], pins: dict[str, str], shipped: str
) -> list[Requirement]:
    """Refuse a requirement that our pin (or the shipped lambdaserve) does not satisfy, naming
    both; return the requirements left for the resolver (lambdaserve is met by its source)."""
    conflicts: list[str] = []
    left: list[Requirement] = []
    for requirement in filter(_applies, requirements):
        name = canonicalize_name(requirement.name)
        pinned = shipped if name == SHIPPED else pins.get(name)
        if pinned is not None and not requirement.specifier.contains(pinned, prereleases=True):
            conflicts.append(
                f"your requirement {requirement} conflicts with our pin {name}=={pinned}"
            )
        if name != SHIPPED:
            left.append(requirement)
    if conflicts:
        raise TrainingSourceError(
            "; ".join(conflicts) + " (our pins are training/requirements.txt, exported from "
            "uv.lock: the job installs exactly them, so relax your requirement)"
        )
    return left


def find_uv() -> str:
    """The uv that ``make`` pinned, else ``$UV``, else ``uv`` on PATH."""
    for candidate in (os.environ.get(UV_ENV), str(LOCAL_UV), shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise TrainingSourceError(
        "resolving its requirements needs uv: run `make test` (it installs the "
        "pinned uv into .uv/) or set $UV"
    )


def _compile(requirements: list[Requirement], wheelhouse: Path | None) -> str:
    """``uv pip compile`` of ``requirements`` with our pins as constraints, for the image."""
    options = ["--constraint", str(PINS), "--python-version", framework_image.PYTHON]
    options += ["--python-platform", PLATFORM, "--no-build", "--generate-hashes"]
    options += ["--no-header", "--no-annotate", "--no-config", "--no-python-downloads", "--quiet"]
    if wheelhouse is not None:
        options += ["--no-index", "--offline", "--find-links", str(wheelhouse)]
    with tempfile.TemporaryDirectory(prefix="lambdaserve-user-requirements-") as tmp:
        source = Path(tmp) / "requirements.in"
        source.write_text("".join(f"{requirement}\n" for requirement in requirements))
        done = subprocess.run(
            [find_uv(), "pip", "compile", str(source), *options],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise TrainingSourceError(
            "its requirements.txt does not resolve with our pins (training/requirements.txt) "
            f"as constraints:\n{done.stderr.strip()[-3000:]}"
        )
    return done.stdout


def _beyond_pins(compiled: str, pins: dict[str, str]) -> str:
    """The compiled entries (each a ``name==version`` line and its hash lines) not pinned."""
    blocks: list[list[str]] = []
    for line in compiled.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            blocks.append([line])
        elif blocks and line.strip():
            blocks[-1].append(line)
    kept = [
        block
        for block in blocks
        if canonicalize_name(Requirement(block[0].rstrip("\\").strip()).name) not in pins
    ]
    return "".join(f"{line}\n" for block in kept for line in block)


def resolve_beyond_pins(path: Path, wheelhouse: Path | None) -> str:
    """Pinned, hashed requirement lines for what ``path`` needs beyond our pins (empty when
    our pins cover it); refused when it conflicts with a pin or does not resolve."""
    pins = read_pins()
    try:
        left = check_against_pins(read_user_requirements(path), pins, shipped_version())
    except TrainingSourceError as exc:
        raise TrainingSourceError(f"{path}: {exc}") from None
    if not left:
        return ""
    return _beyond_pins(_compile(left, wheelhouse), pins)
