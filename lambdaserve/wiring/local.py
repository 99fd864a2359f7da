"""The local backend assembled: one store directory holds bundles, the MLflow registry (SQLite),
function versions and the live alias, request and capture logs, rollout state and drift reports.

The CLI, the demo and the tests take their adapters from here, so each is built one way.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, partial
from pathlib import Path

from fastapi import FastAPI

from lambdaserve.drift.job import bundle_baselines
from lambdaserve.drift.report_store import DriftReportStore
from lambdaserve.drift.scheduled import DriftPorts
from lambdaserve.kernel.artifacts import StoredBundle
from lambdaserve.kernel.capture import CaptureRecord, FeedbackRecord
from lambdaserve.local.artifact_store import LocalArtifactStore, default_store_root
from lambdaserve.local.capture_log import CaptureLog, read_captures, read_stream
from lambdaserve.local.drift_reports import LocalReportFiles
from lambdaserve.local.feedback_key import local_feedback_signer
from lambdaserve.local.function_versions import LocalFunctionVersions
from lambdaserve.local.gateway import LocalGateway, create_gateway
from lambdaserve.local.local_alias import LocalAlias
from lambdaserve.local.local_guard import LocalGuard
from lambdaserve.local.model_routes import ModelRouter, models_by_function, served_model
from lambdaserve.local.rollout_state_file import RolloutStateFile
from lambdaserve.local.script_mode import UserScript
from lambdaserve.local.training_runner import train_and_store, train_script_and_store
from lambdaserve.registry.model_registry import ModelRegistry
from lambdaserve.rollout.use_cases import RolloutContext
from lambdaserve.serving.app import create_app
from lambdaserve.serving.model_loader import LoadedModel
from lambdaserve.serving.settings import ServingSettings

DEFAULT_FUNCTION = "predict"


@dataclass(frozen=True)
class LocalBackend:
    """Adapters over one local store; the registry opens (MLflow) on first use."""

    store: LocalArtifactStore

    @property
    def root(self) -> Path:
        return self.store.root

    @property
    def registry_uri(self) -> str:
        """Where the registry lives: ``LAMBDASERVE_REGISTRY_URI``, else SQLite in the store."""
        from lambdaserve.registry.mlflow_registry import default_tracking_uri

        return default_tracking_uri(self.root)

    @cached_property
    def registry(self) -> ModelRegistry:
        from lambdaserve.registry.mlflow_registry import MlflowRegistry

        return MlflowRegistry.for_store(self.root)

    def functions(self, function_name: str = DEFAULT_FUNCTION) -> LocalFunctionVersions:
        return LocalFunctionVersions(self.root, function_name)

    def rollout_context(
        self,
        function_name: str = DEFAULT_FUNCTION,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> RolloutContext:
        """The live alias of a local function, its request-log guard and the state file; the
        clock is the state file's unless given (the demo passes the wall clock)."""
        functions = self.functions(function_name)
        alias = LocalAlias(functions)
        states = RolloutStateFile(self.root)
        return RolloutContext(
            registry=self.registry,
            alias=alias,
            guard=LocalGuard(self.root, function_name),
            states=states,
            function_name=function_name,
            published=alias.published_versions,
            clock=clock or states.now,
            publisher=functions,
        )

    def capture_log(self) -> CaptureLog:
        return CaptureLog(self.root)

    def rollout_states(self) -> RolloutStateFile:
        return RolloutStateFile(self.root)

    def train(
        self,
        data: Path,
        hyperparameters: Mapping[str, object],
        *,
        on_stage: Callable[[str], None] | None = None,
    ) -> StoredBundle:
        """The SageMaker-contract job run locally; its bundle stored as the next version."""
        return train_and_store(self.store, data, hyperparameters, on_stage=on_stage)

    def train_script(
        self,
        script: Path,
        data: Path,
        hyperparameters: Mapping[str, object],
        *,
        source_dir: Path | None = None,
        on_output: Callable[[str], None] | None = None,
    ) -> StoredBundle:
        """The user's script (its source directory ``source_dir``, default the script's own) run
        under the same contract as the next version of ``hyperparameters["model_name"]``."""
        located = UserScript.locate(script, source_dir)
        return train_script_and_store(
            self.store, located, data, hyperparameters, on_output=on_output
        )

    def model_app(self, model: LoadedModel, settings: ServingSettings) -> FastAPI:
        """One model's app as ``serve --model`` runs it: captures (when enabled) into the store
        and feedback tokens under the store's key, so they verify across restarts."""
        return create_app(
            model,
            settings=settings,
            capture=self.capture_log() if settings.capture_enabled else None,
            feedback_signer=local_feedback_signer(self.root),
        )

    def function_for(self, model: str | None) -> str:
        """The local function of ``model``: the one whose live alias serves it, else one named
        after it, else ``predict`` while that one serves no model (a store's first model lives
        there, as a single-model stage's), else a new one named after the model."""
        if model is None:
            return DEFAULT_FUNCTION
        served = self.served_models()
        if model in served:
            return served[model]
        if self.functions(model).path.is_file():
            return model
        return model if DEFAULT_FUNCTION in served.values() else DEFAULT_FUNCTION

    def served_model(self, function_name: str) -> str | None:
        """The model a local function's live alias serves (None without an alias)."""
        return served_model(self.functions(function_name))

    def served_models(self) -> dict[str, str]:
        """``{model name: local function}`` for every function whose live alias serves one."""
        return models_by_function(self.root)

    def model_router(self, served: Mapping[str, str], settings: ServingSettings) -> ModelRouter:
        """One API over ``served`` (``{model: function}``): ``/models/NAME/...`` per model."""
        return ModelRouter({name: self.gateway(f, settings) for name, f in served.items()})

    def gateway(
        self, function_name: str, settings: ServingSettings, *, rng: random.Random | None = None
    ) -> LocalGateway:
        """The local stand-in for API Gateway over a function's live alias."""
        return create_gateway(self.root, function_name, settings=settings, rng=rng)

    def captures(
        self, start: datetime, end: datetime, *, model: str | None = None
    ) -> Iterator[CaptureRecord]:
        """Prediction records of [start, end): of ``model``'s tree, or of every model's."""
        return read_captures(self.root, start, end, model=model)

    def capture_stream(
        self, start: datetime, end: datetime, *, model: str | None = None
    ) -> Iterator[CaptureRecord | FeedbackRecord]:
        """Capture and feedback records of [start, end): of ``model``, or of every model."""
        return read_stream(self.root, start, end, model=model)

    def drift_reports(self) -> DriftReportStore:
        return DriftReportStore(LocalReportFiles(self.root))

    def drift_ports(self, altered: Collection[str] = ()) -> DriftPorts:
        """Captures and reports in the store, references from its bundles; locally nothing is
        published (no alarms, no metrics): callers print the reports."""
        return DriftPorts(
            captures=self.captures,
            baselines=bundle_baselines(self.store, altered),
            reports=self.drift_reports(),
            model_captures=lambda model: partial(self.captures, model=model),
        )


def open_local(store: Path | None = None) -> LocalBackend:
    """The local backend over ``store`` (default: ``$LAMBDASERVE_HOME`` or ``./.lambdaserve``)."""
    return LocalBackend(LocalArtifactStore(store or default_store_root()))
