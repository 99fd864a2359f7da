"""Docker-free asset bundling: CDK local bundling that runs our build tools as subprocesses.

infra imports none of our runtime code; it runs ``python -m layers.build_layer`` (the layer and
function builders) and ``python -m training.source_bundle`` in the repo, so a change to the code
or the pinned requirements changes the bundled output and with it the asset hash.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, BundlingOutput, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Local bundling always succeeds or fails loudly; this image is never pulled.
_NO_DOCKER = DockerImage.from_registry("local-bundling-only")


@jsii.implements(ILocalBundling)
class _Command:
    def __init__(self, *args: str) -> None:
        self._args = args

    def try_bundle(self, output_dir: str, *_options: Any, **_more: Any) -> bool:
        subprocess.run(
            [sys.executable, *self._args, "--out", output_dir], cwd=REPO_ROOT, check=True
        )
        return True


def _bundling(*args: str, output_type: BundlingOutput | None = None) -> BundlingOptions:
    """Local bundling only; with no ``local`` success CDK would try Docker, which we never use.

    ``command`` (Docker's, never run) names the build: CDK caches bundled output per source
    directory and bundling options within an app, and it cannot see inside ``local``, so two
    builds of one directory (the predict and rollout functions, their layers) would otherwise
    share whichever output was bundled first."""
    return BundlingOptions(
        image=_NO_DOCKER, local=_Command(*args), command=list(args), output_type=output_type
    )


def layer_code(
    requirement_sets: list[str], architecture: str, *, function: str = "predict"
) -> lambda_.Code:
    """One dependency layer from pinned requirement sets, built by ``layers/build_layer.py``,
    which also fails the build when ``function``'s code + the layer pass Lambda's 250 MB
    unzipped limit."""
    budget = () if function == "predict" else ("--function", function)
    return lambda_.Code.from_asset(
        str(REPO_ROOT / "layers"),
        bundling=_bundling(
            "-m",
            "layers.build_layer",
            *requirement_sets,
            "--arch",
            architecture,
            "--combined",
            *budget,
        ),
        asset_hash_type=AssetHashType.OUTPUT,
    )


def predict_function_code(custom_code: Path | None = None) -> lambda_.Code:
    """Only the runtime code the predict function imports (no CLI, training or datasets), plus
    the stage's ``custom_code`` packages under ``custom_code/``."""
    # Relative to the repo root, where cdk.json is (as training_source is).
    extra = ("--custom-code", str((REPO_ROOT / custom_code).resolve())) if custom_code else ()
    return lambda_.Code.from_asset(
        str(REPO_ROOT / "functions"),
        bundling=_bundling("-m", "layers.build_layer", "--function-asset", *extra),
        asset_hash_type=AssetHashType.OUTPUT,
    )


def rollout_function_code() -> lambda_.Code:
    """Only what the rollout handler imports: the controller, its ports and AWS adapters."""
    return lambda_.Code.from_asset(
        str(REPO_ROOT / "functions"),
        bundling=_bundling("-m", "layers.build_layer", "--function-asset", "--function", "rollout"),
        asset_hash_type=AssetHashType.OUTPUT,
    )


def drift_function_code() -> lambda_.Code:
    """Only what the drift handler imports: the drift job, its statistics and S3/SNS adapters."""
    return lambda_.Code.from_asset(
        str(REPO_ROOT / "functions"),
        bundling=_bundling("-m", "layers.build_layer", "--function-asset", "--function", "drift"),
        asset_hash_type=AssetHashType.OUTPUT,
    )


def training_source_bundling(
    source: Path | None = None, entry_point: str = "train.py"
) -> BundlingOptions:
    """``sourcedir.tar.gz`` for SageMaker script mode, uploaded as a single file: our job, or a
    stage's ``training_source`` directory (``source``) running ``entry_point``."""
    user = () if source is None else ("--source", str(source), "--entry-point", entry_point)
    return _bundling("-m", "training.source_bundle", *user, output_type=BundlingOutput.SINGLE_FILE)
