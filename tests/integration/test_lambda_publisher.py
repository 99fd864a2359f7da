"""``LambdaPublisher`` against moto's server on 127.0.0.1, and a Stubber where moto is silent.

moto stores functions and versions but does not run code (nothing here invokes), returns no
``RevisionId`` for function configurations and ignores the ``RevisionId`` sent to
``UpdateFunctionConfiguration`` and ``PublishVersion``. So the stale-revision cases (Lambda's
``PreconditionFailedException``) are exercised through a stubbed client, and the concurrent-change
cases moto can show (another writer between our update and our publish) through a client wrapper.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from lambdaserve.aws.clients import aws_client
from lambdaserve.aws.lambda_publisher import LambdaPublisher
from lambdaserve.kernel.errors import (
    FunctionConflictError,
    FunctionError,
    FunctionVersionInUseError,
)
from lambdaserve.kernel.function_versions import AliasRouting, PublishedVersion
from tests.integration.moto_server import handler_zip, lambda_role

pytestmark = pytest.mark.integration

SHA_A = "a" * 64
SHA_B = "b" * 64
URI_A = "s3://lambdaserve-artifacts-123456789012/models/churn/1/bundle.tar.gz?versionId=v1"
URI_B = "s3://lambdaserve-artifacts-123456789012/models/churn/2/bundle.tar.gz?versionId=v2"
UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on the discard port


@pytest.fixture(scope="module")
def lambda_client(moto_endpoint: str) -> Any:
    return aws_client("lambda", endpoint_url=moto_endpoint)


@pytest.fixture(scope="module")
def role_arn(moto_endpoint: str) -> str:
    """moto checks that a function's role exists."""
    return lambda_role(aws_client("iam", endpoint_url=moto_endpoint), "lambdaserve-predict")


@pytest.fixture
def make_function(lambda_client: Any, role_arn: str) -> Callable[..., str]:
    """Create a fresh function (as the serving stack would) and return its name."""

    def make(*, publish: bool = False) -> str:
        name = f"lambdaserve-predict-{uuid.uuid4().hex[:8]}"
        lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role_arn,
            Handler="handler.lambda_handler",
            Code={"ZipFile": handler_zip()},
            Environment={"Variables": {"LOG_LEVEL": "INFO"}},
            Publish=publish,
        )
        return name

    return make


@pytest.fixture
def function_name(make_function: Callable[..., str]) -> str:
    return make_function()


def publisher_for(name: str, client: Any) -> LambdaPublisher:
    return LambdaPublisher(name, client=client, waiter_delay=0.01, waiter_max_attempts=5)


def environment(client: Any, name: str, qualifier: str = "$LATEST") -> dict[str, str]:
    configuration = client.get_function_configuration(FunctionName=name, Qualifier=qualifier)
    return dict(configuration["Environment"]["Variables"])


def published_numbers(client: Any, name: str) -> list[str]:
    versions = client.list_versions_by_function(FunctionName=name)["Versions"]
    return [v["Version"] for v in versions if v["Version"] != "$LATEST"]


class Interfering:
    """A Lambda client that lets another writer change the function just before ``operation``."""

    def __init__(self, client: Any, operation: str, other_writer: Callable[[], None]) -> None:
        self._client = client
        self._operation = operation
        self._other_writer = other_writer

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name != self._operation:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._other_writer()
            return attribute(*args, **kwargs)

        return call


def other_writer(client: Any, name: str) -> Callable[[], None]:
    def write() -> None:
        client.update_function_configuration(
            FunctionName=name,
            Environment={"Variables": {"MODEL_URI": "s3://elsewhere/bundle.tar.gz"}},
        )

    return write


# --- against moto's server -------------------------------------------------------------------


def test_each_publish_is_a_new_version_pinned_to_its_bundle(
    lambda_client: Any, function_name: str
) -> None:
    publisher = publisher_for(function_name, lambda_client)

    first = publisher.publish(bundle_uri=URI_A, bundle_sha256=SHA_A, description="churn 1")
    second = publisher.publish(bundle_uri=URI_B, bundle_sha256=SHA_B, description="churn 2")

    assert first == PublishedVersion("1", URI_A, SHA_A, "churn 1")
    assert second == PublishedVersion("2", URI_B, SHA_B, "churn 2")
    assert environment(lambda_client, function_name, "1") == {
        "LOG_LEVEL": "INFO",
        "MODEL_URI": URI_A,
        "MODEL_SHA256": SHA_A,
    }
    assert environment(lambda_client, function_name, "2") == {
        "LOG_LEVEL": "INFO",
        "MODEL_URI": URI_B,
        "MODEL_SHA256": SHA_B,
    }
    assert publisher.versions() == [first, second]


def test_find_returns_the_version_pinned_to_a_bundle(
    lambda_client: Any, function_name: str
) -> None:
    publisher = publisher_for(function_name, lambda_client)
    assert publisher.find(SHA_A) is None
    first = publisher.publish(bundle_uri=URI_A, bundle_sha256=SHA_A, description="churn 1")
    publisher.publish(bundle_uri=URI_B, bundle_sha256=SHA_B, description="churn 2")

    again = publisher.find(SHA_A) or publisher.publish(
        bundle_uri=URI_A, bundle_sha256=SHA_A, description="churn 1 again"
    )

    assert again == first
    assert publisher.find("c" * 64) is None
    assert published_numbers(lambda_client, function_name) == ["1", "2"]


def test_versions_include_the_bootstrap_version_that_pins_no_bundle(
    lambda_client: Any, make_function: Callable[..., str]
) -> None:
    name = make_function(publish=True)  # CDK's bootstrap version, created with the function
    publisher = publisher_for(name, lambda_client)

    published = publisher.publish(bundle_uri=URI_A, bundle_sha256=SHA_A, description="churn 1")

    assert published.function_version == "2"
    bootstrap, model = publisher.versions()
    assert (bootstrap.function_version, bootstrap.bundle_uri, bootstrap.bundle_sha256) == (
        "1",
        "",
        "",
    )
    assert model == published
    assert publisher.find("") is None


def test_alias_reads_routing_and_revision(lambda_client: Any, function_name: str) -> None:
    publisher = publisher_for(function_name, lambda_client)
    publisher.publish(bundle_uri=URI_A, bundle_sha256=SHA_A, description="churn 1")
    publisher.publish(bundle_uri=URI_B, bundle_sha256=SHA_B, description="churn 2")
    assert publisher.alias() is None

    created = lambda_client.create_alias(
        FunctionName=function_name,
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )

    routing = publisher.alias()
    assert routing == AliasRouting(
        alias="live", version="1", additional={"2": 0.1}, revision_id=created["RevisionId"]
    )
    assert routing.revision_id
    assert routing.shares() == pytest.approx({"1": 0.9, "2": 0.1})
    assert sum(routing.shares().values()) == pytest.approx(1.0)
    assert publisher.alias("staging") is None


def test_an_alias_without_routing_sends_everything_to_its_version(
    lambda_client: Any, function_name: str
) -> None:
    publisher = publisher_for(function_name, lambda_client)
    publisher.publish(bundle_uri=URI_A, bundle_sha256=SHA_A, description="churn 1")
    lambda_client.create_alias(FunctionName=function_name, Name="live", FunctionVersion="1")

    routing = publisher.alias()

    assert routing is not None
    assert (routing.version, routing.additional, routing.shares()) == ("1", {}, {"1": 1.0})


def test_an_environment_changed_during_the_wait_is_a_conflict_and_publishes_nothing(
    lambda_client: Any, function_name: str
) -> None:
    client = Interfering(lambda_client, "get_waiter", other_writer(lambda_client, function_name))
    publisher = publisher_for(function_name, client)

    with pytest.raises(FunctionConflictError, match="nothing was published") as raised:
        publisher.publish(bundle_uri=URI_A, bundle_sha256=SHA_A, description="churn 1")

    assert function_name in str(raised.value)
    assert "Rerun" in str(raised.value)
    assert published_numbers(lambda_client, function_name) == []


def test_a_version_that_does_not_pin_the_bundle_is_refused(
    lambda_client: Any, function_name: str
) -> None:
    """moto ignores PublishVersion's RevisionId, so the read-back is what catches this here."""
    client = Interfering(
        lambda_client, "publish_version", other_writer(lambda_client, function_name)
    )
    publisher = publisher_for(function_name, client)

    with pytest.raises(FunctionError, match="Do not route traffic to that version") as raised:
        publisher.publish(bundle_uri=URI_A, bundle_sha256=SHA_A, description="churn 1")

    assert not isinstance(raised.value, FunctionConflictError)
    assert f"{function_name} version 1 pins" in str(raised.value)


def test_a_missing_function_is_named(lambda_client: Any) -> None:
    publisher = publisher_for("lambdaserve-missing", lambda_client)

    for operation in (
        lambda: publisher.publish(bundle_uri=URI_A, bundle_sha256=SHA_A, description="x"),
        publisher.versions,
        lambda: publisher.find(SHA_A),
        publisher.alias,
    ):
        with pytest.raises(FunctionError, match="lambdaserve-missing was not found") as raised:
            operation()
        assert not isinstance(raised.value, FunctionConflictError)


def test_an_unreachable_endpoint_fails_quickly() -> None:
    client = boto3.client(
        "lambda",
        endpoint_url=UNREACHABLE,
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=2),
    )
    publisher = publisher_for("lambdaserve-predict", client)
    started = time.monotonic()

    with pytest.raises(FunctionError, match="could not publish a version of Lambda function"):
        publisher.publish(bundle_uri=URI_A, bundle_sha256=SHA_A, description="churn 1")
    with pytest.raises(FunctionError, match="could not list the versions of"):
        publisher.find(SHA_A)

    assert time.monotonic() - started < 10


# --- stubbed: what Lambda does and moto does not ---------------------------------------------

NAME = "lambdaserve-predict"
ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{NAME}"


def configuration(
    revision: str, variables: dict[str, str], version: str = "$LATEST", **extra: Any
) -> dict[str, Any]:
    return {
        "FunctionName": NAME,
        "FunctionArn": ARN,
        "Version": version,
        "RevisionId": revision,
        "Environment": {"Variables": variables},
        **extra,
    }


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("lambda", endpoint_url=UNREACHABLE)
    with Stubber(client) as stubber:
        yield client, stubber


PINNED = {"LOG_LEVEL": "INFO", "MODEL_URI": URI_A, "MODEL_SHA256": SHA_A}


def stub_update(stubber: Stubber) -> None:
    """Read revision r0, update guarded by r0 (answering r1, as Lambda does before it settles)."""
    stubber.add_response(
        "get_function_configuration",
        configuration("r0", {"LOG_LEVEL": "INFO"}),
        {"FunctionName": NAME},
    )
    stubber.add_response(
        "update_function_configuration",
        configuration("r1", PINNED, LastUpdateStatus="InProgress"),
        {"FunctionName": NAME, "Environment": {"Variables": PINNED}, "RevisionId": "r0"},
    )


def stub_settled_update(stubber: Stubber) -> None:
    stubber.add_response(
        "get_function",
        {"Configuration": {"LastUpdateStatus": "Successful"}},
        {"FunctionName": NAME},
    )
    stubber.add_response(
        "get_function_configuration", configuration("r2", PINNED), {"FunctionName": NAME}
    )


def test_publish_is_guarded_by_the_revision_read_after_the_update_settles(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stub_update(stubber)
    stub_settled_update(stubber)
    stubber.add_response(
        "publish_version",
        configuration("r3", PINNED, version="7"),
        {"FunctionName": NAME, "Description": "churn 1", "RevisionId": "r2"},
    )
    version_7 = {"FunctionName": NAME, "Qualifier": "7"}
    stubber.add_response("get_function_configuration", {"State": "Active"}, version_7)
    stubber.add_response(
        "get_function_configuration",
        configuration("r3", PINNED, version="7", Description="churn 1"),
        version_7,
    )

    published = publisher_for(NAME, client).publish(
        bundle_uri=URI_A, bundle_sha256=SHA_A, description="churn 1"
    )

    assert published == PublishedVersion("7", URI_A, SHA_A, "churn 1")
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status"),
    [("PreconditionFailedException", 412), ("ResourceConflictException", 409)],
)
def test_a_stale_revision_on_update_is_a_conflict(
    stubbed: tuple[Any, Stubber], code: str, status: int
) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "get_function_configuration",
        configuration("stale", {"LOG_LEVEL": "INFO"}),
        {"FunctionName": NAME},
    )
    stubber.add_client_error(
        "update_function_configuration", service_error_code=code, http_status_code=status
    )

    with pytest.raises(FunctionConflictError, match=f"{NAME} was changed by someone else") as e:
        publisher_for(NAME, client).publish(bundle_uri=URI_A, bundle_sha256=SHA_A, description="x")

    assert code in str(e.value)
    assert "nothing was published. Rerun the publish." in str(e.value)
    assert isinstance(e.value.__cause__, Exception)
    stubber.assert_no_pending_responses()  # and no publish_version was attempted


def test_a_stale_revision_on_publish_is_a_conflict(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stub_update(stubber)
    stub_settled_update(stubber)
    stubber.add_client_error(
        "publish_version", service_error_code="PreconditionFailedException", http_status_code=412
    )

    with pytest.raises(FunctionConflictError, match="nothing was published"):
        publisher_for(NAME, client).publish(bundle_uri=URI_A, bundle_sha256=SHA_A, description="x")

    stubber.assert_no_pending_responses()


def test_a_failed_update_is_a_function_error(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stub_update(stubber)
    stubber.add_response(
        "get_function",
        {"Configuration": {"LastUpdateStatus": "Failed", "LastUpdateStatusReason": "no memory"}},
        {"FunctionName": NAME},
    )

    with pytest.raises(FunctionError, match="could not publish a version of") as raised:
        publisher_for(NAME, client).publish(bundle_uri=URI_A, bundle_sha256=SHA_A, description="x")

    assert not isinstance(raised.value, FunctionConflictError)
    stubber.assert_no_pending_responses()


def test_delete_version_deletes_that_version_only(lambda_client: Any, function_name: str) -> None:
    publisher = publisher_for(function_name, lambda_client)
    first = publisher.publish(bundle_uri=URI_A, bundle_sha256=SHA_A, description="churn 1")
    second = publisher.publish(bundle_uri=URI_B, bundle_sha256=SHA_B, description="churn 2")
    lambda_client.create_alias(FunctionName=function_name, Name="live", FunctionVersion="2")

    publisher.delete_version(first.function_version)

    assert publisher.versions() == [second]
    assert publisher.find(SHA_A) is None
    assert environment(lambda_client, function_name)["MODEL_SHA256"] == SHA_B, "$LATEST stays"
    routing = publisher.alias()
    assert routing is not None and routing.shares() == {"2": 1.0}


@pytest.mark.parametrize("qualifier", ["$LATEST", "live", "", "1:2"])
def test_delete_version_refuses_anything_but_a_version_number_before_any_call(
    stubbed: tuple[Any, Stubber], qualifier: str
) -> None:
    client, stubber = stubbed

    with pytest.raises(FunctionError, match="only published versions are deleted"):
        publisher_for(NAME, client).delete_version(qualifier)

    stubber.assert_no_pending_responses()  # nothing stubbed, nothing called


@pytest.mark.parametrize(
    ("code", "status"),
    [("ResourceConflictException", 409), ("PreconditionFailedException", 412)],
)
def test_a_version_an_alias_references_is_in_use_not_an_error(
    stubbed: tuple[Any, Stubber], code: str, status: int
) -> None:
    """Lambda: 409 "Unable to delete version because the following aliases reference it"
    (moto deletes it anyway, so this is stubbed)."""
    client, stubber = stubbed
    stubber.add_client_error(
        "delete_function",
        service_error_code=code,
        service_message="Unable to delete version because the following aliases reference it",
        http_status_code=status,
        expected_params={"FunctionName": NAME, "Qualifier": "3"},
    )

    with pytest.raises(FunctionVersionInUseError, match="an alias points at it") as raised:
        publisher_for(NAME, client).delete_version("3")

    assert isinstance(raised.value.__cause__, Exception)
    stubber.assert_no_pending_responses()


def test_deleting_from_a_missing_function_is_named(lambda_client: Any) -> None:
    publisher = publisher_for("lambdaserve-predict-missing", lambda_client)

    with pytest.raises(FunctionError, match="was not found \\(could not delete version 1 of"):
        publisher.delete_version("1")


def test_other_deletion_failures_are_function_errors(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_client_error(
        "delete_function", service_error_code="AccessDeniedException", http_status_code=403
    )

    with pytest.raises(FunctionError, match="could not delete version 2 of") as raised:
        publisher_for(NAME, client).delete_version("2")

    assert not isinstance(raised.value, FunctionConflictError)
