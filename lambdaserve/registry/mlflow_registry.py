"""The MLflow model registry: SQLite inside the local store by default, or the team server that
``LAMBDASERVE_REGISTRY_URI`` names. Aliases (``champion``, ``challenger``), never stages.

Each registration logs a run (estimator parameters, holdout and cross-validation metrics, data
fingerprint, code version, the bundle files as artifacts) and registers a model version whose
source is the run's bundle artifacts and whose tags carry the bundle URI and sha256.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lambdaserve.kernel.artifacts import StoredBundle
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.errors import ModelNotFoundError, RegistryError
from lambdaserve.kernel.manifest import Manifest
from lambdaserve.registry.mlflow_connection import connection_failed, fail_fast
from lambdaserve.registry.model_registry import (
    TAG_ARCHIVE_SHA256,
    TAG_BUNDLE_SHA256,
    TAG_BUNDLE_URI,
    TAG_BUNDLE_VERSION,
    TAG_TASK,
    RegisteredVersion,
)

#: lambdaserve's own registry on a team MLflow server (default: SQLite in the store). Not
#: MLFLOW_TRACKING_URI: that names the server `import models:/...` reads users' models from.
REGISTRY_URI_ENV = "LAMBDASERVE_REGISTRY_URI"


def default_tracking_uri(store_root: Path) -> str:
    return (
        os.environ.get(REGISTRY_URI_ENV) or f"sqlite:///{store_root.resolve()}/registry/mlflow.db"
    )


class MlflowRegistry:
    def __init__(self, tracking_uri: str, *, artifact_root: Path | None = None) -> None:
        fail_fast()
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self._artifact_root = artifact_root
        if tracking_uri.startswith("sqlite:///"):
            Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    @classmethod
    def for_store(cls, store_root: Path) -> MlflowRegistry:
        uri = default_tracking_uri(store_root)
        root = store_root.resolve() / "registry" / "artifacts" if uri.startswith("sqlite") else None
        return cls(uri, artifact_root=root)

    # -- helpers ---------------------------------------------------------------------------

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return function(*args, **kwargs)
        except MlflowException as exc:
            if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}:
                raise ModelNotFoundError(f"{what}: {exc.message}") from exc
            if connection_failed(exc):
                raise RegistryError(
                    f"registry at {self.tracking_uri} is unreachable ({what}); check "
                    f"{REGISTRY_URI_ENV} and that the server is up; nothing was changed"
                ) from exc
            raise RegistryError(f"{what} failed at {self.tracking_uri}: {exc.message}") from exc
        except (OSError, ConnectionError) as exc:
            raise RegistryError(f"registry at {self.tracking_uri} is unreachable: {exc}") from exc
        except Exception as exc:  # requests/sqlalchemy errors surface as their own types
            if type(exc).__module__.startswith(("requests", "urllib3", "sqlalchemy")):
                raise RegistryError(
                    f"registry at {self.tracking_uri} is unreachable ({type(exc).__name__}): "
                    f"{str(exc)[:200]}"
                ) from exc
            raise

    def _experiment_id(self, name: str) -> str:
        experiment = self._call("read experiment", self._client.get_experiment_by_name, name)
        if experiment is not None:
            return str(experiment.experiment_id)
        location = (self._artifact_root / name).as_uri() if self._artifact_root else None
        return str(
            self._call(
                "create experiment",
                self._client.create_experiment,
                name,
                artifact_location=location,
            )
        )

    def _to_version(self, mv: Any, aliases: tuple[str, ...] | None = None) -> RegisteredVersion:
        tags = {str(k): str(v) for k, v in (mv.tags or {}).items()}
        metrics: dict[str, float] = {}
        if mv.run_id:
            run = self._call("read run", self._client.get_run, mv.run_id)
            metrics = {k: float(v) for k, v in run.data.metrics.items() if not k.startswith("cv_")}
        return RegisteredVersion(
            name=mv.name,
            version=str(mv.version),
            bundle_uri=tags.get(TAG_BUNDLE_URI, ""),
            bundle_sha256=tags.get(TAG_BUNDLE_SHA256, ""),
            metrics=metrics,
            aliases=tuple(sorted(aliases if aliases is not None else (mv.aliases or ()))),
            tags=tags,
            run_id=mv.run_id,
        )

    # -- the port --------------------------------------------------------------------------

    def register(
        self, stored: StoredBundle, bundle: VerifiedBundle, *, code_version: str
    ) -> tuple[RegisteredVersion, bool]:
        existing = self.find_by_digest(stored.name, stored.digest)
        if existing is not None:
            return existing, False
        if bundle.digest != stored.digest:
            raise RegistryError("the opened bundle is not the stored one (digest differs)")
        manifest = stored.manifest
        experiment_id = self._experiment_id(stored.name)
        run = self._call(
            "start run",
            self._client.create_run,
            experiment_id,
            tags={
                "mlflow.runName": f"{stored.name}-v{stored.version}",
                "data_fingerprint": manifest.data.fingerprint,
                "code_version": code_version,
                TAG_BUNDLE_URI: stored.uri,
                TAG_BUNDLE_SHA256: stored.digest,
            },
        )
        run_id = run.info.run_id
        self._log_manifest(run_id, manifest)
        self._call("log bundle", self._client.log_artifacts, run_id, str(bundle.path), "bundle")
        self._call("end run", self._client.set_terminated, run_id)
        self._ensure_model(stored.name)
        source = f"runs:/{run_id}/bundle"
        mv = self._call(
            "register version",
            self._client.create_model_version,
            stored.name,
            source,
            run_id=run_id,
            tags={
                TAG_BUNDLE_URI: stored.uri,
                TAG_BUNDLE_SHA256: stored.digest,
                TAG_BUNDLE_VERSION: stored.version,
                TAG_TASK: manifest.task,
                **({TAG_ARCHIVE_SHA256: bundle.archive_sha256} if bundle.archive_sha256 else {}),
            },
            description=f"bundle {stored.name} v{stored.version} ({stored.digest[:12]})",
        )
        return self._to_version(mv, ()), True

    def _log_manifest(self, run_id: str, manifest: Manifest) -> None:
        """The run's params (estimator, target, task, hyperparameters) and metrics (holdout,
        and the cross-validation means)."""
        from mlflow.entities import Metric, Param

        params = {
            "estimator": manifest.estimator.name,
            "target": manifest.target,
            "task": manifest.task,
            **{k: str(v) for k, v in manifest.estimator.params.items()},
        }
        metrics = {
            **manifest.metrics,
            **{f"cv_{k}_mean": v.mean for k, v in manifest.cv_metrics.items()},
        }
        self._call(
            "log run",
            self._client.log_batch,
            run_id,
            metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
        )

    def _ensure_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self._client.get_registered_model(name)
        except MlflowException:
            self._call("create registered model", self._client.create_registered_model, name)

    def find_by_digest(self, name: str, bundle_sha256: str) -> RegisteredVersion | None:
        for version in self.versions(name):
            if version.bundle_sha256 == bundle_sha256:
                return version
        return None

    def get(self, name: str, version: str) -> RegisteredVersion:
        try:
            mv = self._call(
                f"model {name} version {version}", self._client.get_model_version, name, version
            )
        except ModelNotFoundError as exc:
            known = [v.version for v in self.versions(name)]
            raise ModelNotFoundError(
                f"{name} v{version} is not in the registry (registered versions: "
                f"{', '.join(known) or 'none'}); a bundle stored with --no-register is registered "
                f"with `lambdaserve register {name}:BUNDLE_VERSION`"
            ) from exc
        return self._to_version(mv)

    def by_alias(self, name: str, alias: str) -> RegisteredVersion | None:
        from mlflow.exceptions import MlflowException

        try:
            mv = self._client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if exc.error_code in {
                "RESOURCE_DOES_NOT_EXIST",
                "INVALID_PARAMETER_VALUE",
                "NOT_FOUND",
            }:
                return None
            raise RegistryError(f"read alias {alias} of {name}: {exc.message}") from exc
        return self._to_version(mv)

    def versions(self, name: str) -> list[RegisteredVersion]:
        found = self._call(
            "search versions", self._client.search_model_versions, f"name = '{_quote(name)}'"
        )
        if not found:
            return []
        # Search results do not carry aliases; the registered model does.
        model = self._call(f"model {name}", self._client.get_registered_model, name)
        by_version: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            by_version.setdefault(str(version), []).append(alias)
        return sorted(
            (self._to_version(mv, tuple(by_version.get(str(mv.version), ()))) for mv in found),
            key=lambda v: int(v.version),
        )

    def models(self) -> list[str]:
        return sorted(
            m.name for m in self._call("list models", self._client.search_registered_models)
        )

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._call(
            f"set alias {alias}", self._client.set_registered_model_alias, name, alias, version
        )

    def delete_alias(self, name: str, alias: str) -> None:
        self._call(f"delete alias {alias}", self._client.delete_registered_model_alias, name, alias)

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._call(
                f"tag version {version}",
                self._client.set_model_version_tag,
                name,
                version,
                key,
                value,
            )


def _quote(text: str) -> str:
    return text.replace("'", "\\'")
