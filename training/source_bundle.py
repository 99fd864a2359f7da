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

Run by the CDK app's local bundling: ``python -m training.source_bundle --out DIR``; with
``LAMBDASERVE_WHEELHOUSE`` set the wheels come from its ``py312/`` directory, else from the index.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from training import framework_image

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


#: Exported from uv.lock (``make lock``): exact pins with hashes, the closure of the training extra.
REQUIREMENTS = REPO_ROOT / "training" / "requirements.txt"


def requirements() -> str:
    """The archive's ``requirements.txt``: offline, then the lock's pins with their hashes."""
    return OFFLINE_HEADER + REQUIREMENTS.read_text()


def download_wheels(dest: Path) -> list[Path]:
    """Every wheel the requirements pin, for CPython 3.12 on the image's manylinux x86_64, each
    checked against its recorded sha256 (``pip download --require-hashes``)."""
    python = framework_image.PYTHON
    options = ["--no-deps", "--only-binary=:all:", "--python-version", python]
    options += ["--implementation", "cp", "--abi", f"cp{python.replace('.', '')}"]
    tags = ["manylinux2014_x86_64"]
    tags += [f"manylinux_2_{minor}_x86_64" for minor in range(17, IMAGE_GLIBC_MINOR + 1)]
    for tag in tags:  # pip takes --platform literally: every tag the image's glibc accepts
        options += ["--platform", tag]
    wheelhouse = os.environ.get(WHEELHOUSE_ENV)
    if wheelhouse:
        subdir = framework_image.WHEELHOUSE_SUBDIR
        options += ["--no-index", "--find-links", str(Path(wheelhouse) / subdir)]
    command = [sys.executable, "-m", "pip", "download", *options, "--require-hashes"]
    command += ["--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS), "-d", str(dest)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"downloading the training job's wheels failed:\n{done.stderr[-3000:]}")
    return sorted(dest.glob("*.whl"))


def _files(wheels: list[Path]) -> list[tuple[str, bytes]]:
    files = [("train.py", (REPO_ROOT / "training" / "train.py").read_bytes())]
    for entry in PACKAGES:
        path = REPO_ROOT / entry
        sources = [path] if path.is_file() else sorted(path.rglob("*.py"))
        files += [(p.relative_to(REPO_ROOT).as_posix(), p.read_bytes()) for p in sources]
    files.append(("requirements.txt", requirements().encode()))
    files += [(f"{WHEELS}/{wheel.name}", wheel.read_bytes()) for wheel in wheels]
    return files


def build(out: Path) -> Path:
    """Write a reproducible archive (sorted entries, zeroed times) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    archive = out / ARCHIVE
    with tempfile.TemporaryDirectory(prefix="lambdaserve-wheels-") as tmp:
        files = _files(download_wheels(Path(tmp)))
    # Wheels are zip files already: the fastest level gains as much as the slowest would.
    with (
        archive.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=1) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return archive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    archive = build(parser.parse_args().out)
    print(f"{archive} ({archive.stat().st_size / 1024**2:.0f} MiB)")


if __name__ == "__main__":
    main()
