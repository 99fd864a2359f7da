"""The emulator tier: our built function assets and dependency layers run by AWS's Lambda
Runtime Interface Emulator (``tests/support/lambda_runtime.py``). It needs the emulator that
``make test`` fetches (``.lambda-rie/``) and the wheelhouse the layer builds install from; without
them (a plain ``pytest`` on a machine that never ran ``make``) the tier says so and is skipped.

Layers are built once per run for this machine's architecture and shared by every worker; the
tests run in one xdist group, so one worker builds and runs them while the others go on."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from layers.build_layer import build_layer
from layers.function_asset import FUNCTION_ASSETS
from tests.integration.conftest import traffic_rows  # noqa: F401 - the same request rows
from tests.support.bundles import made_once
from tests.support.lambda_runtime import (
    EmulatedFunction,
    build_managed_runtime,
    emulator_binary,
    machine_arch,
    read_only_mounts_work,
)

WHEELHOUSE_ENV = "LAMBDASERVE_WHEELHOUSE"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/runtime/" in str(item.path):
            item.add_marker(pytest.mark.runtime)
            item.add_marker(pytest.mark.xdist_group("lambda-runtime"))


@pytest.fixture(scope="session", autouse=True)
def _emulator_present() -> None:
    if emulator_binary() is None:
        pytest.skip(
            "SKIPPED the Lambda emulator tier: no .lambda-rie/ (run `make test` or "
            "`make runtime`, which fetch AWS's Runtime Interface Emulator)"
        )
    if not os.environ.get(WHEELHOUSE_ENV):
        pytest.skip(
            f"SKIPPED the Lambda emulator tier: ${WHEELHOUSE_ENV} is not set (make sets it)"
        )


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]
) -> Path:
    """``build(root)`` the first time ``name`` is asked for in this run, then the same root."""

    def make(root: Path) -> Path:
        build(root)
        return root

    return made_once(tmp_path_factory, f"built-{name}", make)


@pytest.fixture(scope="session")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``layer(name)``: the requirement set built as a Lambda layer for this machine."""
    arch = machine_arch()

    def get(name: str) -> Path:
        return built_once(
            tmp_path_factory,
            f"layer-{name}-{arch}",
            lambda root: build_layer(name, arch=arch, output_dir=root),
        )

    return get


@pytest.fixture(scope="session")
def asset(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``asset(function)``: the function's built code asset (its handler's import closure)."""

    def get(function: str) -> Path:
        return built_once(tmp_path_factory, f"asset-{function}", FUNCTION_ASSETS[function])

    return get


@pytest.fixture(scope="session")
def managed_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_once(tmp_path_factory, "managed-runtime", build_managed_runtime)


@pytest.fixture(scope="session")
def read_only() -> bool:
    """Task root and layers read-only, as on Lambda, where a mount namespace is allowed."""
    return read_only_mounts_work()


#: ``emulate(function, layers, handler, environment, **options)``: the built function under the
#: emulator, as a context manager.
Emulate = Callable[..., EmulatedFunction]


@pytest.fixture(scope="session")
def emulate(
    asset: Callable[[str], Path],
    layer: Callable[[str], Path],
    managed_runtime: Path,
    read_only: bool,
    tmp_path_factory: pytest.TempPathFactory,
) -> Emulate:
    """Our built ``function`` asset on the built ``layers``, under the emulator."""

    def make(
        function: str,
        layers: tuple[str, ...],
        handler: str,
        environment: dict[str, str],
        **options: Any,
    ) -> EmulatedFunction:
        return EmulatedFunction(
            task_root=asset(function),
            layer_roots=tuple(layer(name) for name in layers),
            runtime_root=managed_runtime,
            handler=handler,
            environment=environment,
            read_only=options.pop("read_only", read_only),
            log_path=options.pop(
                "log_path", tmp_path_factory.mktemp(f"{function}-emulator") / "emulator.log"
            ),
            **options,
        )

    return make
