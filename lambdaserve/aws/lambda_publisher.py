"""Model versions are Lambda versions (DESIGN decision 2): the AWS adapter of ``FunctionPublisher``.

``publish`` points ``$LATEST`` at a bundle (``MODEL_URI``/``MODEL_SHA256``, guarded by the
function's ``RevisionId`` so a concurrent change fails loudly), waits for the update, publishes a
version guarded by the revision the finished update left, and reads the version back to prove it
pins exactly that bundle. A published version is immutable, environment included.

Lambda changes ``RevisionId`` again when an update finishes, so the revision that guards
``PublishVersion`` is read after the waiter, never taken from the update's response.

``delete_version`` deletes one published version (``DeleteFunction`` with its number as the
``Qualifier``; without one Lambda would delete the whole function, so a qualifier that is not a
version number is refused before any call). Lambda refuses deleting a version an alias points
at (``ResourceConflictException``): that is ``FunctionVersionInUseError``, which pruning skips.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdaserve.aws.clients import (
    LAMBDA_CONFLICT_CODES,
    LAMBDA_NOT_FOUND,
    aws_client,
    error_code,
)
from lambdaserve.kernel.errors import (
    FunctionConflictError,
    FunctionError,
    FunctionVersionInUseError,
)
from lambdaserve.kernel.function_versions import (
    LATEST,
    LIVE_ALIAS,
    AliasRouting,
    PublishedVersion,
)

MODEL_URI = "MODEL_URI"
MODEL_SHA256 = "MODEL_SHA256"

Configuration = dict[str, Any]


class LambdaPublisher:
    """Publish, list and find the versions of one Lambda function; read its aliases.

    >>> publisher = LambdaPublisher("lambdaserve-dev-predict")  # doctest: +SKIP
    >>> publisher.find(digest) or publisher.publish(  # doctest: +SKIP
    ...     bundle_uri=uri, bundle_sha256=digest, description="churn 3"
    ... )
    """

    def __init__(
        self,
        function_name: str,
        *,
        client: Any | None = None,
        waiter_delay: float = 1.0,
        # SnapStart snapshots a version before it becomes active: minutes, not seconds.
        waiter_max_attempts: int = 900,
    ) -> None:
        self.function_name = function_name
        self._client: Any = client if client is not None else aws_client("lambda")
        self._waiter_config = {"Delay": waiter_delay, "MaxAttempts": waiter_max_attempts}

    def find(self, bundle_sha256: str) -> PublishedVersion | None:
        """The oldest published version pinned to this bundle, if any."""
        matches = (v for v in self.versions() if v.bundle_sha256 == bundle_sha256)
        return next(matches, None) if bundle_sha256 else None

    def versions(self) -> list[PublishedVersion]:
        """Every published version, oldest first; ones that pin no bundle have empty strings."""
        with self._errors("list the versions of"):
            paginator = self._client.get_paginator("list_versions_by_function")
            pages = paginator.paginate(FunctionName=self.function_name)
            configurations = [c for page in pages for c in page["Versions"]]
            if not any(c["Version"] == LATEST for c in configurations):
                self._configuration()  # moto lists a missing function as empty; Lambda refuses
        published = [c for c in configurations if c["Version"] != LATEST]
        return [_published(c) for c in sorted(published, key=lambda c: int(c["Version"]))]

    def alias(self, name: str = LIVE_ALIAS) -> AliasRouting | None:
        """The alias's routing and revision; None when the function has no such alias."""
        with self._errors(f"read alias {name!r} of"):
            try:
                response = self._client.get_alias(FunctionName=self.function_name, Name=name)
            except ClientError as exc:
                if error_code(exc) != LAMBDA_NOT_FOUND:
                    raise
                self._configuration()  # a missing function is an error, not a missing alias
                return None
        weights = (response.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return AliasRouting(
            alias=name,
            version=response["FunctionVersion"],
            additional={version: float(weight) for version, weight in weights.items()},
            revision_id=response.get("RevisionId", ""),
        )

    def point_alias(self, name: str, version: str, expected_revision: str | None) -> AliasRouting:
        """Create the alias (a function no stack made) or move it, guarded by its RevisionId."""
        with self._errors(f"point alias {name!r} at version {version} of"):
            try:
                if expected_revision is None:
                    self._client.create_alias(
                        FunctionName=self.function_name, Name=name, FunctionVersion=version
                    )
                else:
                    self._client.update_alias(
                        FunctionName=self.function_name,
                        Name=name,
                        FunctionVersion=version,
                        RoutingConfig={"AdditionalVersionWeights": {}},
                        RevisionId=expected_revision,
                    )
            except ClientError as exc:
                if error_code(exc) in LAMBDA_CONFLICT_CODES:
                    raise FunctionConflictError(
                        f"alias {name!r} of Lambda function {self.function_name} was changed by "
                        "someone else meanwhile; it was left as it is. Check `lambdaserve status`."
                    ) from exc
                raise
        routing = self.alias(name)
        if routing is None:  # pragma: no cover - Lambda just answered for it
            raise FunctionError(f"alias {name!r} of {self.function_name} vanished after its write")
        return routing

    def delete_version(self, version: str) -> None:
        """Delete one published version; Lambda answers success for one already gone."""
        if not version.isdigit():
            raise FunctionError(
                f"{version!r} is not a published version number of Lambda function "
                f"{self.function_name}; only published versions are deleted"
            )
        with self._errors(f"delete version {version} of"):
            try:
                self._client.delete_function(FunctionName=self.function_name, Qualifier=version)
            except ClientError as exc:
                if error_code(exc) in LAMBDA_CONFLICT_CODES:
                    raise FunctionVersionInUseError(
                        f"Lambda refused deleting version {version} of {self.function_name}: an "
                        "alias points at it, or the function is being updated; it was kept"
                    ) from exc
                raise

    def publish(self, *, bundle_uri: str, bundle_sha256: str, description: str) -> PublishedVersion:
        """Point ``$LATEST`` at the bundle, wait for the update, publish and verify a version."""
        pinned = {MODEL_URI: bundle_uri, MODEL_SHA256: bundle_sha256}
        with self._errors("publish a version of"):
            variables = self._point_latest_at(pinned)
            updated = self._updated_configuration(variables)
            version = self._publish_version(updated, description)
            published = self._configuration(version)
        return self._verified(published, pinned)

    def _point_latest_at(self, pinned: dict[str, str]) -> dict[str, str]:
        latest = self._configuration()
        variables = {**_variables(latest), **pinned}
        self._client.update_function_configuration(
            FunctionName=self.function_name,
            Environment={"Variables": variables},
            **_revision_guard(latest),
        )
        return variables

    def _updated_configuration(self, variables: dict[str, str]) -> Configuration:
        self._wait("function_updated_v2", FunctionName=self.function_name)
        updated = self._configuration()
        if _variables(updated) != variables:
            raise FunctionConflictError(
                f"the environment of Lambda function {self.function_name} changed while this "
                "publish waited for its update; nothing was published. Rerun the publish."
            )
        return updated

    def _publish_version(self, updated: Configuration, description: str) -> str:
        response = self._client.publish_version(
            FunctionName=self.function_name, Description=description, **_revision_guard(updated)
        )
        version = str(response["Version"])
        self._wait("published_version_active", FunctionName=self.function_name, Qualifier=version)
        return version

    def _verified(self, published: Configuration, pinned: dict[str, str]) -> PublishedVersion:
        found = {key: _variables(published).get(key) for key in pinned}
        if found != pinned:
            raise FunctionError(
                f"Lambda function {self.function_name} version {published['Version']} pins "
                f"{found} instead of {pinned}: the function was changed concurrently. Do not "
                "route traffic to that version; rerun the publish."
            )
        return _published(published)

    def _configuration(self, qualifier: str | None = None) -> Configuration:
        extra = {"Qualifier": qualifier} if qualifier else {}
        return dict(
            self._client.get_function_configuration(FunctionName=self.function_name, **extra)
        )

    def _wait(self, waiter: str, **kwargs: str) -> None:
        self._client.get_waiter(waiter).wait(**kwargs, WaiterConfig=self._waiter_config)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Map botocore errors to ours; the message says what happened and what to do."""
        try:
            yield
        except ClientError as exc:
            code = error_code(exc)
            if code in LAMBDA_CONFLICT_CODES:
                raise FunctionConflictError(
                    f"Lambda function {self.function_name} was changed by someone else while "
                    f"this call ran ({code}); nothing was published. Rerun the publish."
                ) from exc
            if code == LAMBDA_NOT_FOUND:
                raise FunctionError(
                    f"Lambda function {self.function_name} was not found (could not {action} "
                    "it): check the function name and region, or deploy the serving stack."
                ) from exc
            raise FunctionError(
                f"could not {action} Lambda function {self.function_name}: {exc}"
            ) from exc
        except BotoCoreError as exc:
            raise FunctionError(
                f"could not {action} Lambda function {self.function_name}: {exc}"
            ) from exc


def _variables(configuration: Configuration) -> dict[str, str]:
    return dict((configuration.get("Environment") or {}).get("Variables") or {})


def _revision_guard(configuration: Configuration) -> dict[str, str]:
    """``RevisionId`` to send back. Lambda always returns one; moto's server returns none."""
    revision = configuration.get("RevisionId")
    return {"RevisionId": revision} if revision else {}


def _published(configuration: Configuration) -> PublishedVersion:
    variables = _variables(configuration)
    return PublishedVersion(
        function_version=str(configuration["Version"]),
        bundle_uri=variables.get(MODEL_URI, ""),
        bundle_sha256=variables.get(MODEL_SHA256, ""),
        description=configuration.get("Description", ""),
    )
