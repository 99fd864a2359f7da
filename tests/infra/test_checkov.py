"""checkov with zero unacknowledged findings on every synthesized configuration, every
acknowledgement explained and used, and a check that can fail."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from infra import checkov_acknowledgements
from infra.checkov_acknowledgements import (
    ACKNOWLEDGEMENTS,
    CheckovResult,
    check_templates,
    stale,
)
from infra.checkov_findings import CHECKOV_PYTHON, Finding
from tests.infra.conftest import REPO_ROOT, Synthesized

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def results(dev: Synthesized, cognito: Synthesized, many: Synthesized) -> dict[str, CheckovResult]:
    return {
        name: check_templates(synth.template_paths, synth.config.prefix)
        for name, synth in (("dev", dev), ("cognito", cognito), ("many", many))
    }


@pytest.mark.parametrize("name", ["dev", "cognito", "many"])
def test_checkov_finds_nothing_unexplained(name: str, results: dict[str, CheckovResult]) -> None:
    result = results[name]
    assert [str(finding) for finding in result.unacknowledged] == []
    assert result.acknowledged  # checkov ran and its findings were matched to the table
    paths = {finding.path for finding, _ in result.acknowledged}
    assert all("/" in path for path in paths), "findings are named by construct path"


def test_checkov_runs_in_its_own_venv_at_the_locked_version() -> None:
    """Its pins conflict with ours: .venv-checkov, installed from uv.lock's checkov group."""
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    (locked,) = [p["version"] for p in lock["package"] if p["name"] == "checkov"]
    done = subprocess.run(
        [str(CHECKOV_PYTHON), "-c", "import importlib.metadata as m; print(m.version('checkov'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == locked == "3.3.30"


def test_every_acknowledgement_has_a_specific_reason_and_is_used(
    results: dict[str, CheckovResult],
) -> None:
    assert stale(results.values()) == [], "stale acknowledgements"
    for ack in ACKNOWLEDGEMENTS:
        assert len(ack.reason) > 80, ack.path
    assert stale([CheckovResult((), ())]) == list(ACKNOWLEDGEMENTS)


def test_log_groups_are_encrypted_and_reserved_concurrency_is_set(
    results: dict[str, CheckovResult],
) -> None:
    """Fixed rather than acknowledged: no acknowledgement may cover them."""
    for result in results.values():
        checks = {finding.check_id for finding, _ in result.acknowledged}
        assert checks.isdisjoint({"CKV_AWS_158", "CKV_AWS_115"})


def _careless_assembly(dev: Synthesized, outdir: Path) -> Path:
    """dev's serving stack with two resources nobody explained: an unencrypted bucket without
    access logs, and a copy of the predict function outside the table's construct paths; plus a
    bucket whose template skips a check on its own."""
    shutil.copytree(dev.outdir, outdir)
    template_path = outdir / "lambdaserve-dev-serving.template.json"
    template = json.loads(template_path.read_text())
    resources = template["Resources"]
    resources["Careless"] = {"Type": "AWS::S3::Bucket"}
    resources["Shadow"] = json.loads(json.dumps(resources["Predict6CE45951"]))
    resources["Shadow"]["Properties"]["FunctionName"] = "lambdaserve-dev-shadow"
    skip = {"id": "CKV_AWS_18", "comment": "no"}
    resources["Hidden"] = {"Type": "AWS::S3::Bucket", "Metadata": {"checkov": {"skip": [skip]}}}
    template_path.write_text(json.dumps(template))
    metadata_path = outdir / "lambdaserve-dev-serving.metadata.json"
    metadata = json.loads(metadata_path.read_text())
    for name in ("Careless", "Shadow"):
        path = f"/lambdaserve-dev-serving/{name}/Resource"
        metadata[path] = [{"type": "aws:cdk:logicalId", "data": name}]
    metadata_path.write_text(json.dumps(metadata))
    return template_path


def test_an_unexplained_finding_fails_the_check(dev: Synthesized, tmp_path: Path) -> None:
    """The check can fail: a careless bucket, a function outside the table and a skip written in
    the template are all reported, by construct path."""
    template = _careless_assembly(dev, tmp_path / "cdk.out")
    result = check_templates([template], dev.config.prefix)
    found = {(finding.path, finding.check_id, finding.skipped) for finding in result.unacknowledged}
    assert ("lambdaserve-dev-serving/Careless/Resource", "CKV_AWS_18", False) in found
    assert ("lambdaserve-dev-serving/Careless/Resource", "CKV_AWS_21", False) in found
    # The predict function's acknowledged checks are not acknowledged for another function.
    assert ("lambdaserve-dev-serving/Shadow/Resource", "CKV_AWS_117", False) in found
    assert ("Hidden", "CKV_AWS_18", True) in found
    acknowledged = {(finding.path, finding.check_id) for finding, _ in result.acknowledged}
    assert ("lambdaserve-dev-serving/Predict/Resource", "CKV_AWS_117") in acknowledged


def test_make_synth_fails_on_an_unacknowledged_finding(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m infra.checkov_acknowledgements`` (make synth) exits 1 and names the finding."""
    careless = Finding(
        check_id="CKV_AWS_18",
        check_name="Ensure the S3 bucket has access logging enabled",
        path="lambdaserve-dev-serving/Careless/Resource",
        resource="AWS::S3::Bucket.Careless",
        template="lambdaserve-dev-serving.template.json",
    )
    explained = Finding(
        check_id="CKV_AWS_18",
        check_name="Ensure the S3 bucket has access logging enabled",
        path="lambdaserve-dev-storage/AccessLogs/Resource",
        resource="AWS::S3::Bucket.AccessLogs8B620ECA",
        template="lambdaserve-dev-storage.template.json",
    )
    monkeypatch.setattr(checkov_acknowledgements, "scan", lambda paths: [careless, explained])
    assert checkov_acknowledgements.main(["--stage", "dev", "t.template.json"]) == 1
    out, err = capsys.readouterr()
    assert "CKV_AWS_18" in err and "lambdaserve-dev-serving/Careless/Resource" in err
    assert "AccessLogs" not in err
    assert "1 acknowledged, 1 unacknowledged" in out
    monkeypatch.setattr(checkov_acknowledgements, "scan", lambda paths: [explained])
    assert checkov_acknowledgements.main(["--stage", "dev", "t.template.json"]) == 0
