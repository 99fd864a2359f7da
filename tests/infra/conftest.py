"""Synthesize the CDK app once per configuration (bundling skipped: layer builds are tested on
their own in test_layer_build.py) with cdk-nag as a validation plugin."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra.app import build_app
from infra.config import StageConfig, load_stage_config
from infra.nag_suppressions import synth_with_nag

REPO_ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "1")


@dataclass(frozen=True)
class Synthesized:
    config: StageConfig
    outdir: Path
    stacks: dict[str, Any]
    acknowledged: list[tuple[str, str]]

    def template(self, kind: str) -> Template:
        return Template.from_json(self.template_json(kind))

    def template_json(self, kind: str) -> dict[str, Any]:
        path = self.outdir / f"{self.config.prefix}-{kind}.template.json"
        return json.loads(path.read_text())  # type: ignore[no-any-return]

    @property
    def template_paths(self) -> list[Path]:
        return sorted(self.outdir.glob("*.template.json"))


def synthesize(
    outdir: Path,
    stage: str,
    overrides: dict[str, Any] | None = None,
    *,
    bundling_stacks: list[str] | None = None,
) -> Synthesized:
    """``bundling_stacks`` names the stacks whose assets are really built (default: none; asset
    builds are tested on their own)."""
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    if overrides is not None:
        # A stage names the model it serves; these tests' stages serve churn unless they say.
        named = {"model_name", "model_uri", "models"} & set(overrides)
        context["lambdaserve:stages"] = {
            stage: overrides if named else {"model_name": "churn", **overrides}
        }
    context["aws:cdk:bundling-stacks"] = bundling_stacks or []
    context["stage"] = stage
    app = App(context=context, outdir=str(outdir))
    config = load_stage_config(app.node)
    stacks = build_app(app, config)
    acknowledged = synth_with_nag(app, config.prefix)
    return Synthesized(config=config, outdir=outdir, stacks=stacks, acknowledged=acknowledged)


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk-dev"), "dev")


@pytest.fixture(scope="session")
def cognito(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The other choices: Cognito auth, x86_64, the scikit-learn layer, CORS, alarm e-mail."""
    return synthesize(
        tmp_path_factory.mktemp("cdk-cognito"),
        "staging",
        {
            "region": "eu-west-1",
            "account": "123456789012",
            "architecture": "x86_64",
            "runtime": "sklearn",
            "auth_mode": "cognito",
            "cognito_user_pool_arn": (
                "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_abc"
            ),
            "cors_allowed_origins": ["https://app.example.com"],
            "capture_hash": ["customer_id"],
            "alarm_email": "ml@example.com",
            "model_uri": "s3://bucket/models/churn/3/bundle.tar.gz",
            "model_sha256": "a" * 64,
            "waf": False,
            "custom_code": {
                "path": "tests/support/user_code",
                "trusted_types": ["penguin_features.BillShape"],
            },
        },
    )


#: A stage serving several models: churn inherits every stage default; fraud sets its own
#: runtime, memory, concurrency, alarms, bundle and SnapStart; demand captures nothing.
MODELS_STAGE: dict[str, Any] = {
    "region": "us-east-1",
    "memory_mb": 1024,
    "reserved_concurrency": 20,
    "alarms": {"errors": 5, "p99_latency_ms": 500},
    "models": {
        "churn": {},
        "fraud": {
            "runtime": "sklearn",
            "memory_mb": 2048,
            "reserved_concurrency": 5,
            "alarms": {"errors": 2},
            "model_uri": "s3://bucket/models/fraud/7/bundle.tar.gz",
            "snap_start": True,
            "model_sha256": "b" * 64,
        },
        "demand": {"capture": False},
    },
}


@pytest.fixture(scope="session")
def many(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Three models behind one API (the ``models`` mapping)."""
    return synthesize(tmp_path_factory.mktemp("cdk-many"), "many", MODELS_STAGE)
