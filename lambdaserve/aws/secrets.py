"""Read a secret string from AWS Secrets Manager (the capture salt), never from the environment."""

from __future__ import annotations

from lambdaserve.aws.clients import aws_client, error_code
from lambdaserve.kernel.errors import LambdaserveError


class SecretUnavailableError(LambdaserveError):
    """A secret the configuration names cannot be read, or is empty."""


def read_secret_string(secret_id: str) -> str:
    """``SecretString`` of the secret's current version; a clear error when it cannot be read.
    Messages name the failure, not the secret (they may reach API clients in a 503)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = aws_client("secretsmanager").get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = error_code(exc) or "error"
        raise SecretUnavailableError(f"the secret could not be read ({code})") from exc
    except BotoCoreError as exc:
        raise SecretUnavailableError(f"the secret could not be read ({exc})") from exc
    value = response.get("SecretString") or ""
    if not value:
        raise SecretUnavailableError("the secret holds no SecretString")
    return str(value)
