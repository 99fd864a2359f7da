"""The AWS adapter of the rollout controller's ``AliasPort``: the Lambda ``live`` alias.

``route`` sends the alias ``RevisionId`` the controller last read, so Lambda refuses the write
(``PreconditionFailedException``) when anyone else changed the alias in between; the controller
then changes nothing. Every write is read back with ``GetAlias`` and returned as read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdaserve.aws.clients import (
    LAMBDA_CONFLICT_CODES,
    LAMBDA_NOT_FOUND,
    aws_client,
    error_code,
    is_transient,
)
from lambdaserve.kernel.errors import FunctionConflictError, FunctionError, TransientFunctionError
from lambdaserve.kernel.function_versions import LIVE_ALIAS, AliasRouting

LATEST = "$LATEST"


class LambdaAlias:
    """Read and route one alias of one Lambda function.

    >>> alias = LambdaAlias("lambdaserve-dev-predict")  # doctest: +SKIP
    >>> current = alias.read()  # doctest: +SKIP
    >>> alias.route("1", {"2": 0.1}, current.revision_id).shares()  # doctest: +SKIP
    {'1': 0.9, '2': 0.1}
    """

    def __init__(
        self, function_name: str, alias: str = LIVE_ALIAS, *, client: Any | None = None
    ) -> None:
        self.function_name = function_name
        self.name = alias
        self._client: Any = client if client is not None else aws_client("lambda")

    def read(self) -> AliasRouting:
        with self._errors(f"read {self._where}", self._missing_alias):
            response = self._client.get_alias(FunctionName=self.function_name, Name=self.name)
        weights = (response.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return AliasRouting(
            alias=self.name,
            version=str(response["FunctionVersion"]),
            additional={str(version): float(weight) for version, weight in weights.items()},
            revision_id=str(response.get("RevisionId") or ""),
        )

    def route(
        self, version: str, additional: dict[str, float], expected_revision: str
    ) -> AliasRouting:
        """Route the alias if it is still at ``expected_revision``; return it as read back."""
        guard = {"RevisionId": expected_revision} if expected_revision else {}

        def missing() -> str:
            versions = ", ".join(sorted({version, *additional}, key=_number))
            return f"{self._missing_alias()} (or version {versions} is not published)"

        with self._errors(f"route {self._where}", missing):
            self._client.update_alias(
                FunctionName=self.function_name,
                Name=self.name,
                FunctionVersion=version,
                RoutingConfig={"AdditionalVersionWeights": dict(additional)},
                **guard,
            )
        return self.read()

    def published_versions(self) -> set[str]:
        """Every published version number of the function (``$LATEST`` excluded)."""
        with self._errors(
            f"list the versions of Lambda function {self.function_name}", self._missing_function
        ):
            pages = self._client.get_paginator("list_versions_by_function").paginate(
                FunctionName=self.function_name
            )
            versions = {str(c["Version"]) for page in pages for c in page["Versions"]}
            if LATEST not in versions:  # moto lists a missing function as empty; Lambda refuses
                self._client.get_function_configuration(FunctionName=self.function_name)
        return versions - {LATEST}

    @property
    def _where(self) -> str:
        return f"alias {self.name!r} of Lambda function {self.function_name}"

    def _missing_function(self) -> str:
        return (
            f"Lambda function {self.function_name} was not found: check the function name and "
            "region, or deploy the serving stack"
        )

    def _missing_alias(self) -> str:
        """Which of the two is missing, told apart by one more call."""
        try:
            self._client.get_function_configuration(FunctionName=self.function_name)
        except (ClientError, BotoCoreError):
            return self._missing_function()
        return (
            f"Lambda function {self.function_name} has no {self.name!r} alias: deploy the "
            "serving stack, which creates it"
        )

    @contextmanager
    def _errors(self, action: str, missing: Callable[[], str]) -> Iterator[None]:
        """Map botocore errors to ours; the message says what happened and what to do."""
        try:
            yield
        except ClientError as exc:
            code = error_code(exc)
            if code in LAMBDA_CONFLICT_CODES:
                raise FunctionConflictError(
                    f"someone else changed {self._where} since the controller read it ({code}); "
                    "the controller changed nothing. Check the alias, then resume or roll back."
                ) from exc
            if code == LAMBDA_NOT_FOUND:
                raise FunctionError(missing()) from exc
            error = TransientFunctionError if is_transient(exc) else FunctionError
            raise error(f"could not {action}: {exc}") from exc
        except BotoCoreError as exc:
            error = TransientFunctionError if is_transient(exc) else FunctionError
            raise error(f"could not {action}: {exc}") from exc


def _number(version: str) -> int:
    return int(version) if version.isdigit() else -1
