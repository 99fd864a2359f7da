"""The CDK-facing forms of the layer CLI: one merged layer per function (with the size budget
checked before anything is written) and the function asset on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

import layers.build_layer as build
from layers.report import LayerReport

pytestmark = pytest.mark.infra


def _fake_build(sizes: dict[str, int]) -> object:
    def fake(name: str, *, arch: str, output_dir: Path, strip: bool = True) -> LayerReport:
        package = output_dir / "python" / name.replace("-", "_")
        package.mkdir(parents=True)
        (package / "__init__.py").write_bytes(b"#" * 10)
        (output_dir / "python" / "shared.txt").write_text("same in every layer")
        return LayerReport(
            name=name,
            arch=arch,
            unzipped_bytes=sizes[name],
            file_count=2,
            largest_packages=(),
            stripped_so_count=0,
        )

    return fake


def test_combined_merges_the_layers_into_one_python_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(build, "build_layer", _fake_build({"serving-base": 10, "onnx": 20}))
    code = build.main(
        ["serving-base", "onnx", "--arch", "arm64", "--out", str(tmp_path / "out"), "--combined"]
    )
    assert code == 0
    site = tmp_path / "out" / "python"
    assert sorted(p.name for p in site.iterdir()) == ["onnx", "serving_base", "shared.txt"]
    assert "function + layer:" in capsys.readouterr().out


def test_combined_over_budget_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        build,
        "build_layer",
        _fake_build({"serving-base": 100 * build.MB, "sklearn": 160 * build.MB}),
    )
    code = build.main(["serving-base", "sklearn", "--out", str(tmp_path / "out"), "--combined"])
    assert code == 1
    message = capsys.readouterr().err
    assert "layer serving-base 100.0 MB + layer sklearn 160.0 MB" in message
    assert "over Lambda's limit of 250 MB" in message
    assert not (tmp_path / "out").exists()


def test_function_asset_form(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--function-asset", "--out", str(tmp_path / "fn")]) == 0
    assert (tmp_path / "fn" / "functions" / "predict" / "handler.py").is_file()
    assert not (tmp_path / "fn" / "lambdaserve" / "cli").exists()
    assert "function asset:" in capsys.readouterr().out
