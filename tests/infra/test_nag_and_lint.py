"""cdk-nag (AwsSolutions) with zero unacknowledged findings, every acknowledgement explained and
used; cfn-lint with zero errors on every synthesized template."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk import App
from aws_cdk import aws_s3 as s3
from cfnlint.api import ManualArgs, lint

from infra.app import build_app
from infra.config import load_stage_config
from infra.nag_suppressions import ACKNOWLEDGEMENTS, synth_with_nag
from tests.infra.conftest import REPO_ROOT, Synthesized

pytestmark = pytest.mark.infra


@pytest.mark.parametrize("name", ["dev", "cognito", "many"])
def test_cdk_nag_passes(name: str, request: pytest.FixtureRequest) -> None:
    synth: Synthesized = request.getfixturevalue(name)  # synthesis raises on any finding
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    assert all(pack["conclusion"] == "success" for pack in report["pluginReports"])


def test_an_unexplained_finding_fails_synthesis(tmp_path: Path) -> None:
    """The check can fail: one careless bucket in the serving stack stops synthesis."""
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context["aws:cdk:bundling-stacks"] = []
    app = App(context=context, outdir=str(tmp_path))
    config = load_stage_config(app.node)
    stacks = build_app(app, config)
    s3.Bucket(stacks["serving"], "Careless")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="ValidationFailed") as failure:
        synth_with_nag(app, config.prefix)
    assert "lambdaserve-dev-serving/Careless/Resource" in str(failure.value)
    assert "AwsSolutions-S1'" in str(failure.value)  # server access logs disabled


def test_every_acknowledgement_has_a_specific_reason_and_is_used(
    dev: Synthesized, cognito: Synthesized
) -> None:
    used: set[int] = set()
    for synth in (dev, cognito):
        assert synth.acknowledged
        for resource in synth.acknowledged:
            for index, ack in enumerate(ACKNOWLEDGEMENTS):
                path = ack.path.replace("{prefix}", re.escape(synth.config.prefix))
                if re.fullmatch(path, resource[0]) and re.fullmatch(ack.findings, resource[1]):
                    used.add(index)
    assert used == set(range(len(ACKNOWLEDGEMENTS))), "stale acknowledgements"
    for ack in ACKNOWLEDGEMENTS:
        assert len(ack.reason) > 80, ack.path


@pytest.mark.parametrize("name", ["dev", "cognito", "many"])
def test_cfn_lint_has_no_errors(name: str, request: pytest.FixtureRequest) -> None:
    synth: Synthesized = request.getfixturevalue(name)
    assert len(synth.template_paths) == 4  # storage, serving, monitoring, training
    # the stage's region, where the templates deploy (SnapStart, say, is not in every region)
    config = ManualArgs(
        include_checks=["I"], include_experimental=True, regions=[synth.config.region]
    )
    for path in synth.template_paths:
        matches = lint(path.read_text(), config=config)
        errors = [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")]
        assert errors == [], path.name
