"""A stage's ``custom_code``: the user's package joins the predict asset under ``custom_code/``
(nothing else of the directory does), and a process that has only the built asset on its path
and the stage's environment serves a model holding the user's transformer; without the setting
it refuses by type name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from palmerpenguins import load_penguins
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import lambdaserve
from layers.errors import LayerBuildError
from layers.function_asset import CUSTOM_CODE_DIR, build_function_asset, copy_custom_code
from tests.support.penguins import USER_CODE

#: Loads the bundle as the predict wiring does (settings from the environment) and predicts.
PROBE = """
import sys
from lambdaserve.kernel.bundle import verify_bundle
from lambdaserve.kernel.encoding import rows_to_columns
from lambdaserve.kernel.predictors import load_predictor
from lambdaserve.serving.settings import ServingSettings
bundle = verify_bundle(sys.argv[1])
predictor = load_predictor(bundle, trust=ServingSettings().model_trust())
row = {"bill_length_mm": 39.1, "bill_depth_mm": 18.7}
print(predictor.predict_outputs(rows_to_columns(bundle.manifest.features, [row]))[0, 1])
"""


def test_the_predict_asset_carries_the_stages_code_and_only_its_code(tmp_path: Path) -> None:
    source = tmp_path / "project"
    (source / "notebooks").mkdir(parents=True)
    (source / "notebooks" / "explore.ipynb").write_text("{}")
    (source / "data.csv").write_text("a\n1\n")
    (source / "helpers.py").write_text("X = 1\n")
    (source / "features").mkdir()
    (source / "features" / "__init__.py").write_text("Y = 2\n")
    asset = tmp_path / "asset"
    build_function_asset(asset, custom_code=source)
    code = asset / CUSTOM_CODE_DIR
    assert sorted(p.name for p in code.iterdir()) == ["__pycache__", "features", "helpers.py"]
    assert (asset / "functions" / "predict" / "handler.py").is_file()
    with pytest.raises(LayerBuildError, match="no Python module"):
        copy_custom_code(source / "notebooks", tmp_path / "other")


def test_only_the_asset_and_the_stage_setting_serve_a_custom_transformer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(USER_CODE))
    from penguin_features import BillShape

    frame = load_penguins().dropna()
    x = frame[["bill_length_mm", "bill_depth_mm"]]
    model = make_pipeline(BillShape(), LogisticRegression()).fit(x, frame["species"] == "Adelie")
    bundle = lambdaserve.save_model(
        model, tmp_path / "bundle", name="shapes", X=x, trusted=["penguin_features.BillShape"]
    )
    asset = tmp_path / "asset"
    build_function_asset(asset, custom_code=USER_CODE)
    expected = model.predict_proba(x.head(1).assign(bill_length_mm=39.1, bill_depth_mm=18.7))
    # The task root and our own packages, nothing of the user's directory: as on Lambda.
    base = {k: v for k, v in os.environ.items() if k not in {"CODE_DIRS", "TRUSTED_TYPES"}}
    base["PYTHONPATH"] = str(asset)
    command = [sys.executable, "-c", PROBE, str(bundle.path)]
    stage = {**base, "CODE_DIRS": str(asset / CUSTOM_CODE_DIR)}
    served = subprocess.run(command, env=stage, capture_output=True, text=True, check=True)
    assert float(served.stdout) == pytest.approx(expected[0, 1], abs=1e-12)
    refused = subprocess.run(command, env=base, capture_output=True, text=True)
    assert refused.returncode != 0
    assert "does not trust: penguin_features.BillShape" in refused.stderr
