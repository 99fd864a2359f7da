"""The local alias port: the ``live`` alias in the local function file, read back after writes."""

from __future__ import annotations

from lambdaserve.kernel.errors import FunctionError
from lambdaserve.kernel.function_versions import LIVE_ALIAS, AliasRouting
from lambdaserve.local.function_versions import LocalFunctionVersions


class LocalAlias:
    def __init__(self, functions: LocalFunctionVersions, name: str = LIVE_ALIAS) -> None:
        self.functions = functions
        self.name = name

    def read(self) -> AliasRouting:
        routing = self.functions.alias(self.name)
        if routing is None:
            raise FunctionError(
                f"function {self.functions.function_name} has no {self.name!r} alias yet: "
                "publishing the champion creates it (lambdaserve publish NAME:VERSION)"
            )
        return routing

    def route(
        self, version: str, additional: dict[str, float], expected_revision: str
    ) -> AliasRouting:
        self.functions.update_alias(self.name, version, additional, expected_revision)
        return self.read()

    def published_versions(self) -> set[str]:
        return {v.function_version for v in self.functions.versions()}
