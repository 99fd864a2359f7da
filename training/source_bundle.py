"""Build ``sourcedir.tar.gz`` for SageMaker script mode: ``train.py`` at the root, the parts of
``lambdaserve`` the job imports, ``requirements.txt`` exported from ``uv.lock``, and under
``wheels/`` every wheel it pins for the image's Python 3.12 on x86_64.

The job runs with network isolation (the training stack's ``EnableNetworkIsolation``): code in
the container reaches nothing, S3 included, so it cannot write over another job's output with
the role's credentials; SageMaker alone copies the channels in and ``/opt/ml/model`` out, to
this job's own prefix. So the archive arrives as the ``code`` channel, not through the
toolkit's S3 download, and its ``requirements.txt`` installs from its own ``wheels/`` with no
index (pip takes ``--find-links`` in a requirements file relative to that file), each wheel
checked against the sha256 the lock recorded.

With a stage's ``training_source`` (``--source DIR --entry-point FILE``), the user's directory
takes the place of our ``train.py`` (their entry point is the SageMaker program), still with
the lambdaserve packages (so ``lambdaserve.save_model`` imports), and ``requirements.txt`` adds
what their own ``requirements.txt`` needs beyond our pins, resolved against them
(``training.user_requirements``), its wheels under ``wheels/`` too.

Run by the CDK app's local bundling: ``python -m training.source_bundle --out DIR [--source DIR
--entry-point FILE]``; with ``LAMBDASERVE_WHEELHOUSE`` set the wheels come from its ``py312/``
directory, else from the index.
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from training import framework_image
from training.user_requirements import TrainingSourceError, resolve_beyond_pins

REPO_ROOT = Path(__file__).resolve().parent.parent
ARCHIVE = "sourcedir.tar.gz"
#: What the training job imports; serving, the CLI and the AWS adapters stay out.
PACKAGES = ("lambdaserve/__init__.py", "lambdaserve/kernel", "lambdaserve/training")
WHEELS = "wheels"
#: Read before the pins: install from the archive's own wheels, never an index.
OFFLINE_HEADER = f"--no-index\n--find-links {WHEELS}\n"
#: The image's glibc (Ubuntu 24.04: 2.39), as in training/framework-image.txt.
IMAGE_GLIBC_MINOR = 39
#: layers.build_layer.WHEELHOUSE_ENV (not imported: layers imports this package).
WHEELHOUSE_ENV = "LAMBDASERVE_WHEELHOUSE"
#: Never copied from a user's source directory: caches, VCS data, virtualenvs.
SOURCE_IGNORE = (".git", "__pycache__", "*.pyc", ".venv", ".lambdaserve")
#: Names of ours at the archive's root that a user's directory cannot also hold.
RESERVED = ("lambdaserve", WHEELS)


#: Exported from uv.lock (``make lock``): exact pins with hashes, the closure of the training extra.
REQUIREMENTS = REPO_ROOT / "training" / "requirements.txt"


def requirements(beyond_pins: str = "") -> str:
    """The archive's ``requirements.txt``: offline, then the lock's pins with their hashes, then
    what a user's requirements add (pinned, hashed)."""
    extra = f"# training_source requirements beyond the pins above:\n{beyond_pins}"
    return OFFLINE_HEADER + REQUIREMENTS.read_text() + (extra if beyond_pins else "")


def _wheelhouse() -> Path | None:
    wheelhouse = os.environ.get(WHEELHOUSE_ENV)
    return Path(wheelhouse) / framework_image.WHEELHOUSE_SUBDIR if wheelhouse else None


def download_wheels(dest: Path, pins: Path = REQUIREMENTS) -> list[Path]:
    """Every wheel ``pins`` pins, for CPython 3.12 on the image's manylinux x86_64, each
    checked against its recorded sha256 (``pip download --require-hashes``)."""
    python = framework_image.PYTHON
    options = ["--no-deps", "--only-binary=:all:", "--python-version", python]
    options += ["--implementation", "cp", "--abi", f"cp{python.replace('.', '')}"]
    tags = ["manylinux2014_x86_64"]
    tags += [f"manylinux_2_{minor}_x86_64" for minor in range(17, IMAGE_GLIBC_MINOR + 1)]
    for tag in tags:  # pip takes --platform literally: every tag the image's glibc accepts
        options += ["--platform", tag]
    wheelhouse = _wheelhouse()
    if wheelhouse is not None:
        options += ["--no-index", "--find-links", str(wheelhouse)]
    command = [sys.executable, "-m", "pip", "download", *options, "--require-hashes"]
    command += ["--quiet", "--disable-pip-version-check", "-r", str(pins), "-d", str(dest)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"downloading the training job's wheels failed:\n{done.stderr[-3000:]}")
    return sorted(dest.glob("*.whl"))


def _package_files() -> list[tuple[str, bytes]]:
    files = []
    for entry in PACKAGES:
        path = REPO_ROOT / entry
        sources = [path] if path.is_file() else sorted(path.rglob("*.py"))
        files += [(p.relative_to(REPO_ROOT).as_posix(), p.read_bytes()) for p in sources]
    return files


def _ignored(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in SOURCE_IGNORE)


def _walk(source: Path) -> list[Path]:
    """Every file under ``source`` (relative), ignored directories pruned, not walked."""
    found: list[Path] = []
    for root, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not _ignored(d))
        base = Path(root).relative_to(source)
        found += [base / name for name in names if not _ignored(name)]
    return sorted(found)


def user_files(source: Path, entry_point: str) -> list[tuple[str, bytes]]:
    """The user's source directory as SageMaker would copy it to ``/opt/ml/code`` (their
    ``requirements.txt`` aside: the archive's own replaces it)."""
    if not (source / entry_point).is_file():
        raise TrainingSourceError(f"{source} holds no entry point {entry_point}")
    clashes = sorted({name for name in RESERVED if (source / name).exists()})
    if clashes:
        raise TrainingSourceError(
            f"{source} holds {', '.join(clashes)}: the archive ships its own "
            "(lambdaserve's packages and the wheels); rename yours"
        )
    kept = [r for r in _walk(source) if r.as_posix() != "requirements.txt"]
    return [(r.as_posix(), (source / r).read_bytes()) for r in kept]


def _files(
    wheels: list[Path], program: list[tuple[str, bytes]], requirements_text: str
) -> list[tuple[str, bytes]]:
    files = [*program, *_package_files(), ("requirements.txt", requirements_text.encode())]
    files += [(f"{WHEELS}/{wheel.name}", wheel.read_bytes()) for wheel in wheels]
    return files


def build(out: Path, source: Path | None = None, entry_point: str = "train.py") -> Path:
    """Write a reproducible archive (sorted entries, zeroed times) into ``out``: our job, or
    the user's ``source`` directory running ``entry_point``."""
    out.mkdir(parents=True, exist_ok=True)
    archive = out / ARCHIVE
    if source is None:
        program = [("train.py", (REPO_ROOT / "training" / "train.py").read_bytes())]
        beyond_pins = ""
    else:
        program = user_files(source, entry_point)
        wanted = source / "requirements.txt"
        beyond_pins = resolve_beyond_pins(wanted, _wheelhouse()) if wanted.is_file() else ""
    with tempfile.TemporaryDirectory(prefix="lambdaserve-wheels-") as tmp:
        pins = Path(tmp) / "pins.txt"
        pins.write_text(requirements(beyond_pins).removeprefix(OFFLINE_HEADER))
        files = _files(
            download_wheels(Path(tmp) / "wheels", pins), program, requirements(beyond_pins)
        )
    # Wheels are zip files already: the fastest level gains as much as the slowest would.
    with (
        archive.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=1) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        for name, data in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return archive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--source", type=Path, help="the user's training source directory")
    parser.add_argument("--entry-point", default="train.py", help="its script, relative to it")
    args = parser.parse_args()
    try:
        archive = build(args.out, args.source, args.entry_point)
    except TrainingSourceError as exc:
        raise SystemExit(f"training_source: {exc}") from None
    print(f"{archive} ({archive.stat().st_size / 1024**2:.0f} MiB)")


if __name__ == "__main__":
    main()
