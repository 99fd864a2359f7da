"""API Gateway REST (v1) proxy events and a fake Lambda context, as the Lambda runtime passes them.

Standard library only: the cold-start children import this module, and it must cost them nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

FUNCTION_NAME = "lambdaserve-bench-predict"
REGION = "us-east-1"
ACCOUNT = "123456789012"


def api_gateway_event(method: str, path: str, body: object | None = None) -> dict[str, Any]:
    """A REST API proxy-integration event (payload format 1.0) carrying a JSON body."""
    text = None if body is None else json.dumps(body)
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "lambdaserve-bench",
        "X-Forwarded-For": "198.51.100.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if text is not None:
        headers["Content-Length"] = str(len(text.encode()))
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "accountId": ACCOUNT,
            "apiId": "abc123",
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": 1_700_000_000_000,
            "identity": {"sourceIp": "198.51.100.7", "userAgent": "lambdaserve-bench"},
        },
        "body": text,
        "isBase64Encoded": False,
    }


def predict_event(row: Mapping[str, object]) -> dict[str, Any]:
    return api_gateway_event("POST", "/predict", {"features": dict(row)})


def batch_event(rows: Sequence[Mapping[str, object]]) -> dict[str, Any]:
    return api_gateway_event("POST", "/predict/batch", {"instances": [dict(r) for r in rows]})


class FakeLambdaContext:
    """The attributes Powertools' ``inject_lambda_context`` and Mangum read from the context."""

    def __init__(self, memory_mb: int = 1024) -> None:
        self.function_name = FUNCTION_NAME
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_NAME}:live"
        )
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{FUNCTION_NAME}"
        self.log_stream_name = "2024/01/01/[$LATEST]bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
