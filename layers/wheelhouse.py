"""Fetch every pinned wheel the layer builds use into one local directory.

``make test`` runs this once (it is part of installing what the tests need); the tests then
build layers with ``LAMBDASERVE_WHEELHOUSE`` set, so pip reads no package index and no test
reaches beyond loopback. ``make synth`` builds from the index as usual.

    python -m layers.wheelhouse --out .wheelhouse
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from layers.build_layer import LAYERS, WHEELHOUSE_ENV, Arch, pip_target_options
from layers.lock_export import TRAINING_REQUIREMENTS
from layers.pins import Pin, read_requirements, target_requirements
from training import framework_image

REPO_ROOT = Path(__file__).resolve().parents[1]
ARCHES: tuple[Arch, ...] = ("arm64", "x86_64")


def _host_arch() -> Arch:
    return "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"


def _pandas_pin() -> Pin:
    """The tests prove a layer with pandas is refused, so the host needs that wheel too: the
    lock's pandas, as the training job's requirements carry it."""
    return next(p for p in read_requirements(TRAINING_REQUIREMENTS) if p.name == "pandas")


def _download(requirements: Path, arch: Arch, out: Path) -> None:
    options = [o for o in pip_target_options(arch) if o not in ("--no-index",)]
    if "--find-links" in options:  # fetching is what fills the wheelhouse: use the index
        at = options.index("--find-links")
        del options[at : at + 2]
    with tempfile.TemporaryDirectory() as tmp:
        pinned = target_requirements(requirements, arch, Path(tmp) / requirements.name)
        command = [sys.executable, "-m", "pip", "download", *options, "--require-hashes"]
        command += ["-r", str(pinned), "-d", str(out)]
        _pip(command)


def fetch(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for arch in ARCHES:
        for requirements in LAYERS.values():
            _download(requirements, arch, out)
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp) / "test-extra.txt"
        extra.write_text(_pandas_pin().line + "\n")
        _download(extra, _host_arch(), out)
    fetch_training_image(out / framework_image.WHEELHOUSE_SUBDIR)


def fetch_training_image(out: Path) -> None:
    """Python 3.12 wheels for running the training job the way AWS's scikit-learn image does:
    what the image pre-installs (built into wheels where PyPI has only a source archive, as for
    the SageMaker training toolkit) and, resolved apart, the job's own requirements.txt."""
    python = framework_image.find_python()
    if python is None:
        raise SystemExit(
            f"no Python {framework_image.PYTHON} interpreter found (tried "
            f"${framework_image.PYTHON_ENV}, python{framework_image.PYTHON}, pyenv): "
            "the training-image test needs one"
        )
    out.mkdir(parents=True, exist_ok=True)
    pip = [str(python), "-m", "pip"]
    _pip([*pip, "wheel", "-r", str(framework_image.PREINSTALLED), "-w", str(out)])
    job = TRAINING_REQUIREMENTS  # exported from uv.lock with hashes, markers for Python 3.12
    download = [*pip, "download", "--only-binary=:all:", "--require-hashes", "-r", str(job)]
    _pip([*download, "-d", str(out)])


def _pip(command: list[str]) -> None:
    """Run pip quietly; on failure show what it said (its warnings otherwise flood the log)."""
    done = subprocess.run(
        [*command, "--quiet", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    out = parser.parse_args().out
    fetch(out)
    wheels = sorted(out.rglob("*.whl"))  # py312/ included
    size = sum(w.stat().st_size for w in wheels) / 1024**2
    print(f"{len(wheels)} wheels ({size:.0f} MB) in {out}; builds use them with {WHEELHOUSE_ENV}")


if __name__ == "__main__":
    main()
