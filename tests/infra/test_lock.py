"""One lock for every environment: the venv, the layers' pins and the job's pins all equal
``uv.lock``, and the Makefile refuses a wrong interpreter or a stale lock in one line."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from layers import lock_export
from layers.build_layer import LAYERS
from layers.pins import InstalledDist, normalize, read_pins, read_requirements, verify_closure
from training import framework_image, source_bundle

pytestmark = pytest.mark.infra

REPO_ROOT = Path(__file__).resolve().parents[2]
MAKE_TRAILER = re.compile(r"^make(\[\d+\])?: \*\*\*")


@pytest.fixture(scope="module")
def uv() -> str:
    try:
        return lock_export.find_uv()
    except lock_export.LockExportError as exc:
        pytest.fail(str(exc))


def _exported(uv: str, *selection: str) -> dict[str, str]:
    """``{name: version}`` that ``uv export`` pins for ``selection`` (extras, groups)."""
    done = subprocess.run(
        [uv, "export", "--frozen", "--no-emit-project", "--no-hashes", *selection],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    versions: dict[str, str] = {}
    for line in done.stdout.splitlines():
        if line and not line.startswith(("#", " ")):
            pin = Requirement(line)
            if pin.marker is None or pin.marker.evaluate():
                versions[normalize(pin.name)] = str(pin.specifier).removeprefix("==")
    return versions


def _locked_versions(uv: str) -> dict[str, str]:
    """``{name: version}`` of the project's resolution in uv.lock, one version each. The lock
    forks only for the ``checkov`` group, which pyproject declares conflicting with every extra
    (checkov pins boto3, packaging, networkx... below ours), and a package is locked at two
    versions only where checkov's closure needs the other one."""
    project = _exported(uv, "--extra", "dev")
    checkov = _exported(uv, "--only-group", "checkov")
    locked: dict[str, set[str]] = {}
    for package in tomllib.loads((REPO_ROOT / "uv.lock").read_text())["package"]:
        locked.setdefault(normalize(package["name"]), set()).add(package["version"])
    for name, versions in locked.items():
        if len(versions) > 1:
            assert versions == {project[name], checkov[name]}, f"{name} is locked at {versions}"
    return project


def test_every_exported_file_equals_what_the_lock_exports_now(uv: str) -> None:
    stale = [e.path.relative_to(REPO_ROOT) for e in lock_export.exports(uv) if not e.current]

    assert not stale, f"run `make lock`: {stale}"


def test_every_exported_pin_equals_the_lock(uv: str) -> None:
    locked = _locked_versions(uv)
    files = [*LAYERS.values(), lock_export.TRAINING_REQUIREMENTS]

    for path in files:
        pins = read_requirements(path)
        assert pins, path
        for pin in pins:
            assert locked[pin.name] == pin.version, f"{path.name}: {pin.name}"


def test_the_venv_equals_the_lock_package_by_package(uv: str) -> None:
    wanted = _exported(uv, "--extra", "dev")
    venv = Path(sys.prefix)
    installed = {
        normalize(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions(path=[str(p) for p in sys.path])
        if Path(str(dist.locate_file(""))).resolve().is_relative_to(venv.resolve())
    }
    installed.pop("lambdaserve")

    assert sys.prefix != sys.base_prefix, "the tests run in the project's venv"
    assert installed == wanted


def test_layers_split_the_serving_extra_without_repeating_a_pin() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    serving = dict(
        requirement.split("==")
        for requirement in pyproject["project"]["optional-dependencies"]["serving"]
    )
    pins = {layer: read_pins(path, "arm64") for layer, path in LAYERS.items()}
    merged = {name: v for layer_pins in pins.values() for name, v in layer_pins.items()}

    for name, version in serving.items():
        if normalize(name) == "boto3":
            assert "boto3" not in merged, "the python3.13 runtime provides boto3"
        else:
            assert merged[normalize(name)] == version
    base = pins["serving-base"]
    for layer in ("onnx", "sklearn", "drift"):
        assert not base.keys() & pins[layer].keys(), f"{layer} repeats a serving-base pin"
        verify_closure(_venv_dists(pins[layer]), {**base, **pins[layer]}, arch="arm64", layer=layer)
    verify_closure(_venv_dists(base), base, arch="arm64", layer="serving-base")


def _venv_dists(pins: dict[str, str]) -> dict[str, InstalledDist]:
    dists = {name: importlib.metadata.distribution(name) for name in pins}
    return {
        name: InstalledDist(name, dist.version, tuple(dist.requires or ()))
        for name, dist in dists.items()
    }


def test_the_training_archive_carries_the_exported_requirements(tmp_path: Path) -> None:
    exported = lock_export.TRAINING_REQUIREMENTS.read_text()
    assert source_bundle.requirements() == source_bundle.OFFLINE_HEADER + exported
    names = {pin.name for pin in read_requirements(lock_export.TRAINING_REQUIREMENTS)}
    assert {"scikit-learn", "skl2onnx", "onnx", "pandas", "numpy", "pydantic"} <= names


def test_a_stale_export_is_named_with_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = tmp_path / "requirements.txt"
    edited.write_text(lock_export.TRAINING_REQUIREMENTS.read_text().replace("3.1.1", "3.1.0"))
    monkeypatch.setattr(lock_export, "TRAINING_REQUIREMENTS", edited)

    status = lock_export.main(["--check"])

    assert status == 1
    assert capsys.readouterr().err == (
        f"{edited} differs from what uv.lock exports: run `make lock`\n"
    )
    assert "3.1.0" in edited.read_text(), "--check writes nothing"


def _copy_build_files(tmp_path: Path) -> None:
    for name in ("Makefile", "pyproject.toml", "uv.lock", ".python-version"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)


def _make(target: str, tmp_path: Path, **variables: str) -> list[str]:
    """``make TARGET`` in ``tmp_path``, offline: what it says on stderr besides make's own
    ``make: ***`` trailer, which follows any failed recipe."""
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    env["UV_OFFLINE"] = "1"
    overrides = [f"{key}={value}" for key, value in variables.items()]
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(tmp_path), target, *overrides],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0, done.stdout
    return [line for line in done.stderr.splitlines() if not MAKE_TRAILER.match(line)]


def test_make_refuses_another_python_in_one_line(tmp_path: Path) -> None:
    python312 = framework_image.find_python()
    assert python312 is not None, "make test fetched wheels with a Python 3.12"

    _copy_build_files(tmp_path)

    said = _make("python", tmp_path, PYTHON=str(python312))

    assert said == [
        f"error: Python 3.13 is needed (.python-version), found '{python312}': install it (e.g. "
        "'pyenv install 3.13') or run 'make PYTHON=/path/to/python3.13 ...'"
    ]


def test_make_refuses_a_stale_lock_in_one_line_and_installs_nothing(
    tmp_path: Path, uv: str
) -> None:
    _copy_build_files(tmp_path)
    (tmp_path / ".uv" / "bin").mkdir(parents=True)
    (tmp_path / ".uv" / "bin" / "uv").symlink_to(uv)
    pyproject = (tmp_path / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(pyproject.replace('"numpy==2.5.5"', '"numpy==2.5.4"'))

    [line] = _make(".venv/.installed-dev", tmp_path)

    assert line.startswith("error: uv.lock does not match pyproject.toml: run 'make lock'")
    assert not (tmp_path / ".venv").exists()
