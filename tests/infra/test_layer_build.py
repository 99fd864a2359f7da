"""The Lambda layers, built without Docker, serve predictions on their own.

Layers are built once per session for the host architecture, then a fresh interpreter with no
site-packages (``python -S -I``) and ``sys.path`` = [function asset, layers...] answers an API
Gateway event through ``functions.predict.handler``: the pruned and stripped layers import and
predict, with ONNX Runtime and with scikit-learn. arm64 layers are downloaded and checked to be
aarch64 ELF at the pinned versions (pip settles for older wheels when a platform tag is missing).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest

import lambdaserve
from lambdaserve.datasets import churn
from lambdaserve.kernel.bundle import VerifiedBundle
from layers import build_layer as build
from layers import bytecode
from layers.budget import MB, check_budget
from layers.elf import ELF_MACHINES, elf_machine
from layers.errors import (
    ForbiddenDistributionError,
    LayerBudgetError,
    LayerBuildError,
    PinMismatchError,
)
from layers.function_asset import build_function_asset
from layers.lock_export import TRAINING_REQUIREMENTS
from layers.pins import InstalledDist, normalize, read_pins, read_requirements, verify_pins
from tests.support.events import make_event
from tests.support.imports import unresolved_first_party_imports
from tests.support.lambda_context import CONTEXT_FILE
from tests.support.penguins import json_row, penguins, user_pipeline

pytestmark = pytest.mark.infra

REPO_ROOT = Path(__file__).resolve().parents[2]
Arch = Literal["arm64", "x86_64"]
_MACHINE = platform.machine().lower()
HOST_ARCH: Arch | None = (
    "x86_64" if _MACHINE in {"x86_64", "amd64"} else "arm64" if _MACHINE == "aarch64" else None
)
needs_linux_host = pytest.mark.skipif(
    sys.platform != "linux" or HOST_ARCH is None, reason="layers run only on a Linux host"
)

CHILD = r"""
import json
import runpy
import sys
from pathlib import Path

paths, event_path, result_path = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
Context = runpy.run_path(sys.argv[4])["FakeLambdaContext"]  # tests/support/lambda_context.py
sys.path[:0] = paths


from functions.predict import handler

response = handler.lambda_handler(json.loads(Path(event_path).read_text()), Context())
blas = []
if "scipy" in sys.modules:  # scipy's vendored OpenBLAS must load and compute after stripping
    import numpy as np
    import scipy.linalg
    from threadpoolctl import threadpool_info

    matrix = np.array([[4.0, 1.0], [2.0, 3.0]])
    blas = [info["filepath"] for info in threadpool_info()]
    blas.append(float(scipy.linalg.solve(matrix, np.array([1.0, 2.0]))[1]))
Path(result_path).write_text(json.dumps({
    "status": response["statusCode"],
    "body": json.loads(response["body"]),
    "modules": {
        name: getattr(sys.modules.get(name), "__file__", None)
        for name in ("functions.predict.handler", "numpy", "onnxruntime", "sklearn", "scipy",
                     "pandas", "boto3")
    },
    "sys_path": sys.path,
    "blas": blas,
}))
"""


def _built(root: Path, arch: Arch, names: tuple[str, ...]) -> dict[str, Path]:
    """``{layer name: site dir}`` plus ``"function"``: the asset directory."""
    sites = {}
    for name in names:
        build.build_layer(name, arch=arch, output_dir=root / name)
        sites[name] = root / name / "python"
    build_function_asset(root / "function")
    return {**sites, "function": root / "function"}


@pytest.fixture(scope="session")
def host_layers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if HOST_ARCH is None or sys.platform != "linux":
        pytest.skip("layers are built on a Linux host")
    return _built(tmp_path_factory.mktemp("layers-host"), HOST_ARCH, tuple(build.LAYERS))


@pytest.fixture(scope="session")
def arm64_layers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _built(tmp_path_factory.mktemp("layers-arm64"), "arm64", ("serving-base", "onnx"))


def _row(bundle: VerifiedBundle) -> dict[str, Any]:
    """One row of fresh churn traffic as a client sends it (JSON null for missing values)."""
    record = churn.generate_churn(5, seed=11).to_dict(orient="records")[0]
    row: dict[str, Any] = {}
    for spec in bundle.manifest.features.features:
        value = record[spec.name]
        if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
            row[spec.name] = None
        elif spec.kind == "categorical":
            row[spec.name] = str(value)
        else:
            row[spec.name] = int(float(value)) if spec.dtype == "int" else float(value)
    return row


def serve_from_layers(
    bundle: VerifiedBundle,
    paths: list[Path],
    tmp_path: Path,
    *,
    row: dict[str, Any] | None = None,
    status: int = 200,
) -> dict[str, Any]:
    event = make_event("rest_api_post_predict", {"features": row or _row(bundle)})
    event_path, result_path = tmp_path / "event.json", tmp_path / "result.json"
    event_path.write_text(json.dumps(event))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MODEL_URI": str(bundle.path),
        "MODEL_SHA256": bundle.digest,
        "BUNDLE_CACHE_DIR": str(tmp_path / "bundles"),
    }
    search_path = json.dumps([str(path) for path in paths])
    child = subprocess.run(
        [
            *(sys.executable, "-S", "-I", "-c", CHILD),
            *(search_path, str(event_path), str(result_path), str(CONTEXT_FILE)),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    result: dict[str, Any] = json.loads(result_path.read_text())
    result["log"] = child.stdout
    assert not any("site-packages" in entry for entry in result["sys_path"])
    assert result["status"] == status, result["body"]
    if status == 200:
        assert 0.0 <= result["body"]["probability"] <= 1.0
        assert result["body"]["model"]["version"] == bundle.manifest.version
    handler_file = result["modules"]["functions.predict.handler"]
    assert Path(handler_file).is_relative_to(paths[0])
    return result


@needs_linux_host
def test_onnx_layers_serve_a_prediction(
    host_layers: dict[str, Path], churn_bundle: VerifiedBundle, tmp_path: Path
) -> None:
    paths = [host_layers["function"], host_layers["serving-base"], host_layers["onnx"]]

    result = serve_from_layers(churn_bundle, paths, tmp_path)

    modules = result["modules"]
    assert modules["pandas"] is None, "no pandas on the serving path"
    assert Path(modules["onnxruntime"]).is_relative_to(host_layers["onnx"])
    assert Path(modules["numpy"]).is_relative_to(host_layers["serving-base"])
    assert modules["sklearn"] is None, "an ONNX bundle needs no scikit-learn layer"


@needs_linux_host
def test_sklearn_layers_serve_a_prediction_with_vendored_openblas(
    host_layers: dict[str, Path], churn_hgb_bundle: VerifiedBundle, tmp_path: Path
) -> None:
    paths = [host_layers["function"], host_layers["serving-base"], host_layers["sklearn"]]

    result = serve_from_layers(churn_hgb_bundle, paths, tmp_path)

    assert Path(result["modules"]["sklearn"]).is_relative_to(host_layers["sklearn"])
    assert result["modules"]["onnxruntime"] is None
    assert result["modules"]["pandas"] is None, "no pandas on the serving path"
    *libraries, solved = result["blas"]
    assert any("scipy.libs" in library for library in libraries), libraries
    assert solved == pytest.approx(0.6)  # [[4, 1], [2, 3]] x = [1, 2]


@needs_linux_host
def test_a_dataframe_pipeline_is_served_with_the_dataframe_layer_and_refused_without(
    host_layers: dict[str, Path], tmp_path: Path
) -> None:
    x_train, x_test, y_train, _ = penguins()
    model = user_pipeline().fit(x_train, y_train)
    bundle = lambdaserve.save_model(model, tmp_path / "bundle", name="penguins", X=x_train)
    row = json_row(x_test.iloc[0])
    base = [host_layers["function"], host_layers["serving-base"], host_layers["sklearn"]]

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    served = serve_from_layers(bundle, [*base, host_layers["dataframe"]], tmp_path / "a", row=row)
    refused = serve_from_layers(bundle, base, tmp_path / "b", row=row, status=503)

    assert Path(served["modules"]["pandas"]).is_relative_to(host_layers["dataframe"])
    expected = model.predict_proba(x_test.head(1))[0, 1]
    assert served["body"]["probability"] == pytest.approx(expected, abs=1e-9)
    assert refused["body"]["detail"].startswith("model bundle could not be loaded")
    assert "serve it with a stage whose dataframe_inputs is true" in refused["log"]


def _check_layer(site_dir: Path, layer: str, arch: Arch) -> None:
    pins = read_pins(build.LAYERS[layer], arch)
    installed = {
        normalize(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions(path=[str(site_dir)])
    }
    assert installed == pins
    assert not {"boto3", "botocore"} & installed.keys()
    if layer != "dataframe":  # the one layer that carries pandas (a stage's dataframe_inputs)
        assert "pandas" not in installed and not (site_dir / "pandas").exists()
    assert not [p for p in site_dir.rglob("*") if p.is_dir() and p.name in {"tests", "test"}]
    assert not list(site_dir.rglob("*.pyi"))
    shared = [p for p in site_dir.rglob("*.so*") if p.is_file() and elf_machine(p) is not None]
    assert shared, "every layer here ships compiled code"
    assert {elf_machine(p) for p in shared} == {ELF_MACHINES[arch]}
    sources = list(site_dir.rglob("*.py"))
    missing = [p for p in sources if not Path(importlib.util.cache_from_source(str(p))).is_file()]
    assert not missing, f"{len(missing)} modules without cpython-313 bytecode: {missing[:5]}"
    for source in sources[::50]:  # unchecked-hash pycs: valid whatever the file mtimes
        header = Path(importlib.util.cache_from_source(str(source))).read_bytes()[:8]
        assert header[:4] == importlib.util.MAGIC_NUMBER
        assert int.from_bytes(header[4:8], "little") == 0b01


@needs_linux_host
@pytest.mark.parametrize("layer", list(build.LAYERS))
def test_host_layer_matches_pins_and_is_pruned(host_layers: dict[str, Path], layer: str) -> None:
    assert HOST_ARCH is not None
    _check_layer(host_layers[layer], layer, HOST_ARCH)
    assert (host_layers[layer] / "numpy" / "testing").is_dir() or layer != "serving-base"


@pytest.mark.parametrize("layer", ["serving-base", "onnx"])
def test_arm64_layer_is_aarch64_at_the_pinned_versions(
    arm64_layers: dict[str, Path], layer: str
) -> None:
    _check_layer(arm64_layers[layer], layer, "arm64")


def test_verify_pins_names_every_difference() -> None:
    installed = {
        "numpy": InstalledDist("numpy", "2.2.6", ()),
        "extra": InstalledDist("extra", "1.0", ()),
    }

    with pytest.raises(PinMismatchError) as caught:
        verify_pins(installed, {"numpy": "2.5.5", "onnxruntime": "1.32.0"}, "onnx")

    message = str(caught.value)
    assert "numpy: pinned 2.5.5, installed 2.2.6" in message
    assert "onnxruntime: pinned 1.32.0, not installed" in message
    assert "extra: installed 1.0, not pinned" in message


HASH = "--hash=sha256:" + "ab" * 32


def test_a_requirement_that_is_not_an_exact_pin_is_refused(tmp_path: Path) -> None:
    requirements = tmp_path / "loose.txt"
    requirements.write_text(f"# comment\nnumpy==2.5.5 \\\n    {HASH}\nscipy>=1.10 {HASH}\n")

    with pytest.raises(LayerBuildError, match=r"loose.txt:4: 'scipy>=1.10' is not an exact"):
        read_pins(requirements)


def test_a_pin_without_its_hash_is_refused(tmp_path: Path) -> None:
    requirements = tmp_path / "by-hand.txt"
    requirements.write_text(f"numpy==2.5.5 {HASH}\nscipy==1.18.1 ; sys_platform == 'linux'\n")

    with pytest.raises(LayerBuildError, match=r"by-hand.txt:2: 'scipy==1.18.1' carries no sha256"):
        read_pins(requirements)


def test_markers_are_decided_for_the_lambda_runtime_not_the_host(tmp_path: Path) -> None:
    requirements = tmp_path / "exported.txt"
    requirements.write_text(
        f"numpy==2.5.5 ; sys_platform == 'linux' \\\n    {HASH}\n"
        f"only-x86==1.0 ; platform_machine == 'x86_64' {HASH}\n"
        f"old-python==1.0 ; python_full_version < '3.13' {HASH}\n"
        f"windows==1.0 ; sys_platform == 'win32' {HASH}\n"
    )

    assert read_pins(requirements, "arm64") == {"numpy": "2.5.5"}
    assert read_pins(requirements, "x86_64") == {"numpy": "2.5.5", "only-x86": "1.0"}
    pinned = build.target_requirements(requirements, "arm64", tmp_path / "arm64.txt")
    assert pinned.read_text() == f"numpy==2.5.5 {HASH}\n"


@needs_linux_host
def test_a_layer_with_pandas_fails_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert HOST_ARCH is not None
    pandas = next(p for p in read_requirements(TRAINING_REQUIREMENTS) if p.name == "pandas")
    assert pandas.version == importlib.metadata.version("pandas")
    requirements = tmp_path / "dataframes.txt"
    requirements.write_text(pandas.line + "\n")
    monkeypatch.setitem(build.LAYERS, "dataframes", requirements)
    monkeypatch.setitem(build.LAYER_BASES, "dataframes", ("serving-base",))

    with pytest.raises(ForbiddenDistributionError, match="no pandas on the serving path"):
        build.build_layer("dataframes", arch=HOST_ARCH, output_dir=tmp_path / "out")


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@needs_linux_host
def test_builds_are_reproducible_byte_for_byte(
    host_layers: dict[str, Path], tmp_path: Path
) -> None:
    """CDK hashes the bundled output: an unchanged pin file must give an unchanged asset."""
    assert HOST_ARCH is not None
    build.build_layer("serving-base", arch=HOST_ARCH, output_dir=tmp_path / "again")
    build_function_asset(tmp_path / "function")

    assert _tree_digest(tmp_path / "again" / "python") == _tree_digest(host_layers["serving-base"])
    assert _tree_digest(tmp_path / "function") == _tree_digest(host_layers["function"])


def test_bytecode_is_refused_from_another_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bytecode, "RUNTIME_PYTHON", (3, 12))

    with pytest.raises(LayerBuildError, match=r"must be compiled by Python 3\.13; this build runs"):
        bytecode.compile_bytecode(tmp_path, runtime_path="/var/task")


def test_budget_under_the_limit_returns_the_total() -> None:
    assert check_budget(MB, {"serving-base": 65 * MB, "onnx": 80 * MB}) == 146 * MB


def test_budget_over_the_limit_names_every_part() -> None:
    with pytest.raises(LayerBudgetError) as caught:
        check_budget(MB // 2, {"serving-base": 65 * MB, "sklearn": 190 * MB})

    message = str(caught.value)
    for part in ("function 0.5 MB", "serving-base 65.0 MB", "sklearn 190.0 MB", "255.5 MB"):
        assert part in message
    assert "250 MB" in message and "by 5.5 MB" in message


def test_budget_at_exactly_the_limit_passes() -> None:
    assert check_budget(0, {"a": 100, "b": 50}, limit=150) == 150


@needs_linux_host
def test_function_asset_holds_only_the_serving_code(host_layers: dict[str, Path]) -> None:
    asset = host_layers["function"]
    package = asset / "lambdaserve"
    size = sum(path.stat().st_size for path in asset.rglob("*") if path.is_file())

    assert size < 2 * MB
    assert (asset / "functions" / "predict" / "handler.py").is_file()
    for excluded in (
        "cli",
        "training",
        "datasets",
        "registry",
        "rollout",
        "drift",
        "abtest",
        "demo",
        "views",
        "local",
    ):
        assert not (package / excluded).exists()
    assert not (package / "local").exists()  # serving imports nothing of the local backend
    assert sorted(p.name for p in (package / "wiring").glob("*.py")) == [
        "__init__.py",
        "aws_predict.py",
        "snapstart_hooks.py",  # imported only in a SnapStart init, but part of the closure
    ]
    assert not (package / "serving" / "background_server.py").exists()
    assert not unresolved_first_party_imports(asset)


@needs_linux_host
def test_cli_prints_the_report_and_fails_over_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert HOST_ARCH is not None
    monkeypatch.setattr(build, "check_budget", functools.partial(check_budget, limit=10 * MB))

    status = build.main(["serving-base", "--arch", HOST_ARCH, "--out", str(tmp_path)])

    captured = capsys.readouterr()
    assert status == 1
    assert "serving-base" in captured.out and "numpy" in captured.out
    assert "over Lambda's limit of 10 MB" in captured.err
    assert (tmp_path / "serving-base" / "python" / "numpy").is_dir()
    assert (tmp_path / "function" / "functions" / "predict" / "handler.py").is_file()
