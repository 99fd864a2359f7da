"""The one factory every boto3 client comes from (DESIGN decision 8).

``endpoint_url`` (or ``AWS_ENDPOINT_URL``) points clients at moto's server in tests; nothing here
talks to AWS at import time.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from lambdaserve.kernel.errors import AwsConfigurationError


@lru_cache(maxsize=32)
def _client(service: str, endpoint_url: str | None, region: str | None) -> Any:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    config = Config(
        retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30
    )
    try:
        return boto3.session.Session().client(
            service, endpoint_url=endpoint_url, region_name=region, config=config
        )
    except NoRegionError as exc:
        raise AwsConfigurationError(
            f"no AWS region is set for {service}: export AWS_REGION (or AWS_DEFAULT_REGION), or "
            "set `region` in ~/.aws/config"
        ) from exc


def forget_clients() -> None:
    """Drop every cached client, so the next call makes a new one (SnapStart's after-restore
    hook: a restored environment must not reuse the snapshot's connections or credentials)."""
    _client.cache_clear()


def aws_client(service: str, *, endpoint_url: str | None = None, region: str | None = None) -> Any:
    """A cached boto3 client; ``endpoint_url`` defaults to ``$AWS_ENDPOINT_URL`` when set."""
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    return _client(service, endpoint, region or os.environ.get("AWS_REGION") or None)


#: Lambda's answers to a call that lost a race (a RevisionId that no longer matches).
LAMBDA_CONFLICT_CODES = frozenset({"PreconditionFailedException", "ResourceConflictException"})
LAMBDA_NOT_FOUND = "ResourceNotFoundException"


def error_code(exc: Any) -> str:
    """The service's error code of a botocore ``ClientError`` ("" when it names none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


#: Error codes of throttling and of service-side failures: what botocore's own retry modes
#: retry, for callers that retry again at a longer interval once botocore gave up.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceException",
    }
)


def is_transient(exc: BaseException) -> bool:
    """A botocore error that a later attempt may not meet: throttling, a 5xx, a dropped or
    timed-out connection. A refusal (access denied, not found, invalid input) is not."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return error_code(exc) in TRANSIENT_CODES or status >= 500
    return isinstance(exc, ConnectionError | HTTPClientError)
