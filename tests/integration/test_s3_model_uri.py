"""``MODEL_URI=s3://bucket/key[?versionId=...]`` against moto's server on 127.0.0.1.

The bundle archive is what ``pack_bundle`` writes and the artifact store uploads; the handler is
built as on Lambda, downloading into its cache directory (``/tmp`` there) at init.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lambdaserve.aws.clients import aws_client
from lambdaserve.kernel.bundle import VerifiedBundle, pack_bundle, seal_bundle
from lambdaserve.serving.settings import ServingSettings
from lambdaserve.wiring.aws_predict import LambdaHandler

pytestmark = [
    pytest.mark.integration,
    # Mangum 0.22 probes for a loop with asyncio.get_event_loop(), which Python 3.12-3.13 answer
    # with this DeprecationWarning (and then create the loop) when none is set, as on Lambda.
]

BUCKET = "lambdaserve-artifacts-123456789012"
KEY = "models/churn/1/bundle.tar.gz"
URI = f"s3://{BUCKET}/{KEY}"

BuildHandler = Callable[[ServingSettings], LambdaHandler]


@dataclass(frozen=True)
class Published:
    """One key uploaded twice to a versioned bucket: the original bundle, then a re-seal of it."""

    first_version_id: str
    first_digest: str
    latest_version_id: str
    latest_digest: str


@pytest.fixture
def aws_endpoint(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point every client the factory makes at moto (the handler reads no endpoint setting)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint


@pytest.fixture(scope="module")
def published(
    moto_endpoint: str,
    churn_bundle: VerifiedBundle,
    tmp_path_factory: pytest.TempPathFactory,
) -> Published:
    work = tmp_path_factory.mktemp("s3-publish")
    resealed_dir = work / "resealed"
    shutil.copytree(churn_bundle.path, resealed_dir)
    resealed = seal_bundle(
        resealed_dir,
        churn_bundle.manifest.model_copy(update={"created_at": datetime(2026, 1, 2, tzinfo=UTC)}),
    )
    assert resealed.digest != churn_bundle.digest

    s3 = aws_client("s3", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    version_ids = []
    for number, bundle in enumerate([churn_bundle, resealed]):
        archive = pack_bundle(bundle.path, work / f"upload-{number}" / "bundle.tar.gz")
        response = s3.put_object(Bucket=BUCKET, Key=KEY, Body=archive.read_bytes())
        version_ids.append(response["VersionId"])
    return Published(
        first_version_id=version_ids[0],
        first_digest=churn_bundle.digest,
        latest_version_id=version_ids[1],
        latest_digest=resealed.digest,
    )


def invoke(handler: LambdaHandler, event: dict[str, Any], context: object) -> tuple[int, Any]:
    response = handler(event, context)
    body = response["body"]
    if response["isBase64Encoded"]:
        body = base64.b64decode(body).decode()
    return response["statusCode"], json.loads(body)


def test_predicts_with_the_latest_archive_pinned_by_sha256(
    aws_endpoint: str,
    published: Published,
    build_handler: BuildHandler,
    make_event: Any,
    lambda_context: Any,
    traffic_rows: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    cache = tmp_path / "bundles"
    handler = build_handler(
        ServingSettings(model_uri=URI, model_sha256=published.latest_digest, bundle_cache_dir=cache)
    )

    status, model = invoke(handler, make_event("rest_api_get_model"), lambda_context)
    assert status == 200, model
    assert model["digest"] == published.latest_digest
    status, prediction = invoke(
        handler, make_event("http_api_post_predict", {"features": traffic_rows[0]}), lambda_context
    )
    assert status == 200, prediction
    assert 0.0 <= prediction["probability"] <= 1.0
    assert prediction["model"] == {"name": "churn", "version": "1"}
    assert any(p.name.endswith("bundle.tar.gz") for p in cache.iterdir()), "downloaded to cache"


def test_version_id_pins_the_original_archive(
    aws_endpoint: str,
    published: Published,
    build_handler: BuildHandler,
    make_event: Any,
    lambda_context: Any,
    traffic_rows: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    uri = f"{URI}?versionId={published.first_version_id}"
    settings = ServingSettings(
        model_uri=uri, model_sha256=published.first_digest, bundle_cache_dir=tmp_path / "bundles"
    )
    handler = build_handler(settings)

    status, model = invoke(handler, make_event("rest_api_get_model"), lambda_context)
    assert status == 200, model
    assert model["digest"] == published.first_digest
    status, batch = invoke(
        handler,
        make_event("rest_api_post_predict_batch", {"instances": traffic_rows[:20]}),
        lambda_context,
    )
    assert status == 200, batch
    assert len(batch["predictions"]) == 20


def test_a_warm_cache_serves_a_pinned_version_without_downloading(
    aws_endpoint: str,
    published: Published,
    build_handler: BuildHandler,
    make_event: Any,
    lambda_context: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uri = f"{URI}?versionId={published.first_version_id}"
    settings = ServingSettings(model_uri=uri, bundle_cache_dir=tmp_path / "bundles")
    build_handler(settings)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there

    status, health = invoke(
        build_handler(settings), make_event("http_api_get_health"), lambda_context
    )

    assert status == 200, health


def test_a_digest_that_does_not_match_is_503(
    aws_endpoint: str,
    published: Published,
    build_handler: BuildHandler,
    make_event: Any,
    lambda_context: Any,
    traffic_rows: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    handler = build_handler(
        ServingSettings(
            model_uri=URI, model_sha256=published.first_digest, bundle_cache_dir=tmp_path / "b"
        )
    )

    for event in (
        make_event("rest_api_get_health"),
        make_event("rest_api_post_predict", {"features": traffic_rows[0]}),
    ):
        status, body = invoke(handler, event, lambda_context)
        assert status == 503, body
        assert "failed its sha256 verification" in body["detail"]
        assert published.first_digest not in body["detail"]
        assert "Traceback" not in json.dumps(body)


@pytest.mark.parametrize(
    "uri",
    [
        f"s3://{BUCKET}/models/churn/9/bundle.tar.gz",
        f"{URI}?versionId=3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        "s3://no-such-bucket-123456789012/models/churn/1/bundle.tar.gz",
    ],
    ids=["missing-key", "unknown-version", "missing-bucket"],
)
def test_an_archive_that_cannot_be_downloaded_is_503(
    aws_endpoint: str,
    published: Published,
    build_handler: BuildHandler,
    make_event: Any,
    lambda_context: Any,
    traffic_rows: list[dict[str, Any]],
    tmp_path: Path,
    uri: str,
) -> None:
    handler = build_handler(ServingSettings(model_uri=uri, bundle_cache_dir=tmp_path / "b"))

    status, health = invoke(handler, make_event("http_api_get_health"), lambda_context)
    assert status == 503, health
    assert health["status"] == "unavailable"
    assert "model bundle could not be loaded" in health["detail"]
    assert uri not in health["detail"] and "404" not in health["detail"]
    status, body = invoke(
        handler, make_event("http_api_post_predict", {"features": traffic_rows[0]}), lambda_context
    )
    assert status == 503, body
    assert body["detail"] == health["detail"]
    assert "Traceback" not in body["detail"]
    assert not list((tmp_path / "b").glob("*.partial")), "no partial download left behind"
