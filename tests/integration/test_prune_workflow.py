"""``lambdaserve prune`` and ``--keep-versions`` end to end: the local backend, and the AWS backend
against moto's server. Six registry versions are published as function versions 1-6; live sends
80% to 1 (the champion) and 20% to 2; the challenger is 4. Keeping one newest, 3 and 5 go.

moto numbers a new version ``len(versions) + 1`` (Lambda never reuses a number), so publishing
again after a deletion is shown on the local backend, which numbers like Lambda.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lambdaserve.aws.clients import aws_client
from lambdaserve.cli.main import app
from lambdaserve.kernel.bundle import VerifiedBundle, seal_bundle
from lambdaserve.kernel.errors import FunctionError
from lambdaserve.local.artifact_store import LocalArtifactStore
from lambdaserve.local.function_versions import LocalFunctionVersions
from lambdaserve.registry.mlflow_registry import MlflowRegistry
from lambdaserve.registry.registration import register_bundle
from tests.integration.moto_server import handler_zip, lambda_role, new_bucket

pytestmark = pytest.mark.integration
runner = CliRunner()
VERSIONS = [str(n) for n in range(1, 7)]


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def bundles(
    tmp_path_factory: pytest.TempPathFactory, churn_bundle: VerifiedBundle
) -> list[VerifiedBundle]:
    """Six churn bundles (versions 1-6): the trained one, sealed again under each version."""
    sealed = []
    for number in VERSIONS:
        directory = tmp_path_factory.mktemp(f"bundle-{number}") / "bundle"
        shutil.copytree(churn_bundle.path, directory)
        manifest = churn_bundle.manifest.model_copy(update={"version": number})
        sealed.append(seal_bundle(directory, manifest))
    return sealed


@pytest.fixture(scope="module")
def registered_template(
    tmp_path_factory: pytest.TempPathFactory, bundles: list[VerifiedBundle]
) -> Path:
    """A store holding the six bundles, registered as registry versions 1-6."""
    root = tmp_path_factory.mktemp("registered") / "store"
    store = LocalArtifactStore(root)
    registry = MlflowRegistry.for_store(store.root)
    for bundle in bundles:
        stored = store.put(bundle.path)
        register_bundle(registry, store, stored.name, stored.version, code_version="test")
    return store.root


@pytest.fixture
def store(tmp_path: Path, registered_template: Path) -> Path:
    """A copy of the registered store: bundles are read from it by name and version."""
    root = tmp_path / "store"
    shutil.copytree(registered_template, root)
    return root.resolve()


def deploy(store: Path, *backend: str) -> None:
    """Champion v1 (the first deployment points live at it), every version published, v4 the
    challenger."""
    assert cli("models", "promote", "churn:1", "--store", str(store)).exit_code == 0
    for number in VERSIONS:
        result = cli("publish", f"churn:{number}", "--store", str(store), *backend)
        assert result.exit_code == 0, result.output
    registry = MlflowRegistry.for_store(store)
    registry.set_alias("churn", "challenger", "4")


def prune(store: Path, *args: str) -> Any:
    return cli("prune", "churn", "--store", str(store), *args)


def show(store: Path, version: str) -> dict[str, Any]:
    return json.loads(cli("models", "show", f"churn:{version}", "--store", str(store)).stdout)  # type: ignore[no-any-return]


def assert_report(report: dict[str, Any], *, dry_run: bool) -> None:
    assert report["dry_run"] is dry_run
    assert [(d["function_version"], d["model_version"]) for d in report["deleted"]] == [
        ("3", "3"),
        ("5", "5"),
    ]
    assert [(k["function_version"], k["reasons"]) for k in report["kept"]] == [
        ("1", ["routed", "champion"]),
        ("2", ["routed"]),
        ("4", ["challenger"]),
        ("6", ["newest"]),
    ]
    assert report["untagged"] == ["3", "5"]
    assert report["skipped"] == [] and report["error"] is None


# -- local --------------------------------------------------------------------------------


@pytest.fixture
def local(store: Path) -> LocalFunctionVersions:
    deploy(store)
    functions = LocalFunctionVersions(store, "predict")
    live = functions.alias()
    assert live is not None
    functions.update_alias("live", "1", {"2": 0.2}, live.revision_id)
    return functions


def numbers(functions: LocalFunctionVersions) -> list[str]:
    return [v.function_version for v in functions.versions()]


def test_a_dry_run_deletes_nothing_locally(store: Path, local: LocalFunctionVersions) -> None:
    before = local.path.read_bytes()

    result = prune(store, "--keep", "1", "--dry-run", "--json")

    assert result.exit_code == 0, result.output
    assert_report(json.loads(result.stdout), dry_run=True)
    assert local.path.read_bytes() == before
    assert show(store, "3")["lambda_version"] == "3"


def test_prune_keeps_what_is_in_use_and_the_newest_locally(
    store: Path, local: LocalFunctionVersions
) -> None:
    result = prune(store, "--keep", "1", "--json")

    assert result.exit_code == 0, result.output
    assert_report(json.loads(result.stdout), dry_run=False)
    assert numbers(local) == ["1", "2", "4", "6"]
    assert show(store, "3")["lambda_version"] is None
    assert show(store, "3")["tags"]["pruned_lambda_version"] == "3"
    assert show(store, "4")["lambda_version"] == "4"
    again = prune(store, "--keep", "1", "--json")
    assert json.loads(again.stdout)["deleted"] == [], "nothing left to prune"


def test_a_pruned_registry_version_is_published_again(
    store: Path, local: LocalFunctionVersions
) -> None:
    assert prune(store, "--keep", "1").exit_code == 0

    result = cli("publish", "churn:3", "--store", str(store))

    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())
    assert "churn v3 published as predict version 7" in said, "a new number, never 3 again"
    assert show(store, "3")["lambda_version"] == "7"
    assert local.find(show(store, "3")["bundle_sha256"]) is not None


def test_the_table_says_why_each_version_stays(store: Path, local: LocalFunctionVersions) -> None:
    result = prune(store, "--keep", "2", "--dry-run")

    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "routed, champion" in rows["1"] and "kept" in rows["1"]
    assert "would delete" in rows["3"] and "older than the 2 newest" in rows["3"]
    assert "newest" in rows["5"] and "newest" in rows["6"]
    assert "(dry run)" in result.stdout
    assert "v3 would no longer be recorded as published" in " ".join(result.stderr.split())


def test_keep_comes_from_the_environment_and_is_validated(
    store: Path, local: LocalFunctionVersions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAMBDASERVE_KEEP_VERSIONS", raising=False)
    missing = runner.invoke(app, ["prune", "churn", "--store", str(store)])
    assert missing.exit_code == 2 and "--keep" in missing.output
    zero = runner.invoke(app, ["prune", "churn", "--keep", "0", "--store", str(store)])
    assert zero.exit_code == 2
    assert numbers(local) == VERSIONS

    monkeypatch.setenv("LAMBDASERVE_KEEP_VERSIONS", "3")
    result = prune(store, "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["keep"] == 3
    assert numbers(local) == ["1", "2", "4", "5", "6"]


def test_a_failed_deletion_exits_non_zero_with_what_was_done(
    store: Path, local: LocalFunctionVersions, monkeypatch: pytest.MonkeyPatch
) -> None:
    delete = LocalFunctionVersions.delete_version

    def failing(self: LocalFunctionVersions, version: str) -> None:
        if version == "5":
            raise FunctionError("the disk is full")
        delete(self, version)

    monkeypatch.setattr(LocalFunctionVersions, "delete_version", failing)

    result = prune(store, "--keep", "1")

    assert result.exit_code == 1
    assert "deleting version 5 failed, pruning stopped: the disk is full" in result.stderr
    assert "Traceback" not in result.output
    assert numbers(local) == ["1", "2", "4", "5", "6"]
    assert show(store, "3")["lambda_version"] is None


# -- --keep-versions after a rollout ------------------------------------------------------


def start_canary(store: Path) -> None:
    result = cli("rollout", "start", "churn", "--challenger", "4", "--force", "--store", str(store))
    assert result.exit_code == 0, result.output


@pytest.fixture
def deployed(store: Path) -> LocalFunctionVersions:
    deploy(store)
    return LocalFunctionVersions(store, "predict")


def test_promotion_prunes_with_keep_versions(
    store: Path, deployed: LocalFunctionVersions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAMBDASERVE_KEEP_VERSIONS", raising=False)
    start_canary(store)

    result = cli("rollout", "promote", "churn", "--keep-versions", "1", "--store", str(store))

    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())
    assert "pruned version(s) 1, 2, 3, 5 of predict (kept 4, 6; --keep-versions 1)" in said
    assert numbers(deployed) == ["4", "6"]
    assert show(store, "4")["aliases"] == ["champion"]
    assert show(store, "1")["lambda_version"] is None


def test_rollback_prunes_with_the_environment_default(
    store: Path, deployed: LocalFunctionVersions, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_canary(store)
    monkeypatch.setenv("LAMBDASERVE_KEEP_VERSIONS", "1")

    result = cli("rollout", "rollback", "churn", "--store", str(store))

    assert result.exit_code == 5, result.output  # rolled back, as without pruning
    assert "pruned version(s) 2, 3, 5 of predict (kept 1, 4, 6" in " ".join(result.stdout.split())
    assert numbers(deployed) == ["1", "4", "6"]


def test_without_a_keep_count_a_rollout_prunes_nothing_and_says_nothing(
    store: Path, deployed: LocalFunctionVersions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAMBDASERVE_KEEP_VERSIONS", raising=False)
    start_canary(store)

    result = cli("rollout", "promote", "churn", "--store", str(store))

    assert result.exit_code == 0, result.output
    assert "prun" not in result.output.lower()
    assert numbers(deployed) == VERSIONS


def test_a_pruning_failure_after_promotion_is_a_warning(
    store: Path, deployed: LocalFunctionVersions, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_canary(store)

    def failing(self: LocalFunctionVersions, version: str) -> None:
        raise FunctionError("the disk is full")

    monkeypatch.setattr(LocalFunctionVersions, "delete_version", failing)

    result = cli("rollout", "promote", "churn", "--keep-versions", "1", "--store", str(store))

    assert result.exit_code == 0, result.output
    warned = " ".join(result.stderr.split())
    assert "warning: pruning old versions of predict: deleting version 1 failed" in warned
    assert "Traceback" not in result.output
    assert show(store, "4")["aliases"] == ["champion"], "the promotion stands"


def test_ab_stop_prunes_too(store: Path, deployed: LocalFunctionVersions) -> None:
    started = cli("ab", "start", "churn", "--challenger", "4", "--force", "--store", str(store))
    assert started.exit_code == 0, started.output

    result = cli("ab", "stop", "churn", "--keep-versions", "2", "--store", str(store))

    assert result.exit_code == 0, result.output
    assert numbers(deployed) == ["1", "4", "5", "6"]


# -- AWS (moto) ---------------------------------------------------------------------------


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A predict function and a versioned artifact bucket, as the CDK stacks create them."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    s3, lam, iam = (aws_client(s, endpoint_url=moto_endpoint) for s in ("s3", "lambda", "iam"))
    function = f"lambdaserve-predict-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=function,
        Runtime="python3.13",
        Role=lambda_role(iam, f"predict-{uuid.uuid4().hex[:8]}"),
        Handler="handler.lambda_handler",
        Code={"ZipFile": handler_zip()},
    )
    return {"lambda": lam, "function": function, "bucket": new_bucket(s3)}


@pytest.fixture
def on_aws(store: Path, aws: dict[str, Any]) -> list[str]:
    deploy(store, *aws_args(aws), "--bucket", f"s3://{aws['bucket']}")
    aws["lambda"].update_alias(
        FunctionName=aws["function"],
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.2}},
    )
    return aws_args(aws)


def aws_args(aws: dict[str, Any]) -> list[str]:
    return ["--backend", "aws", "--function", aws["function"]]


def aws_numbers(aws: dict[str, Any]) -> list[str]:
    listed = aws["lambda"].list_versions_by_function(FunctionName=aws["function"])["Versions"]
    return [v["Version"] for v in listed if v["Version"] != "$LATEST"]


def test_prune_on_aws_dry_run_then_for_real(
    store: Path, aws: dict[str, Any], on_aws: list[str]
) -> None:
    dry = prune(store, "--keep", "1", "--dry-run", "--json", *on_aws)
    assert dry.exit_code == 0, dry.output
    assert_report(json.loads(dry.stdout), dry_run=True)
    assert aws_numbers(aws) == VERSIONS

    result = prune(store, "--keep", "1", "--json", *on_aws)

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert_report(report, dry_run=False)
    assert report["function_name"] == aws["function"]
    assert aws_numbers(aws) == ["1", "2", "4", "6"]
    live = aws["lambda"].get_alias(FunctionName=aws["function"], Name="live")
    assert live["FunctionVersion"] == "1"
    assert live["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.2}
    assert show(store, "5")["lambda_version"] is None
    assert show(store, "6")["tags"]["lambda_function"] == aws["function"]


def test_a_missing_function_on_aws_is_a_clear_error(store: Path, aws: dict[str, Any]) -> None:
    result = prune(store, "--keep", "1", "--backend", "aws", "--function", "no-such-function")

    assert result.exit_code == 1
    assert "Lambda function no-such-function was not found" in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_prune_on_aws_needs_its_function(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LAMBDASERVE_FUNCTION", "LAMBDASERVE_STAGE"):
        monkeypatch.delenv(name, raising=False)

    result = runner.invoke(app, ["prune", "churn", "--keep", "1", "--backend", "aws"])

    assert result.exit_code == 2 and "--function" in result.output


def test_resuming_a_finished_rollout_prunes_and_brings_the_tags_up_to_date(
    store: Path, deployed: LocalFunctionVersions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As after an unattended promotion: the rollout Lambda pruned without the registry, and
    ``rollout resume`` with registry access clears the tags naming the deleted versions."""
    monkeypatch.delenv("LAMBDASERVE_KEEP_VERSIONS", raising=False)
    start_canary(store)
    assert cli("rollout", "promote", "churn", "--store", str(store)).exit_code == 0
    deployed.delete_version("2")  # what the rollout Lambda's registry-free pruning leaves

    result = cli("rollout", "resume", "churn", "--keep-versions", "1", "--store", str(store))

    assert result.exit_code == 0, result.output
    assert numbers(deployed) == ["4", "6"]
    assert show(store, "2")["lambda_version"] is None
    assert "registry: churn v1, v2, v3, v5 are no longer recorded as published" in " ".join(
        result.stdout.split()
    )
