"""The user's MLflow tracking server, read: model URIs, the tracking URI without credentials,
and a model resolved (a registered version, an alias, a run) and downloaded, failing in seconds
with a one-line error when the server is unreachable or the model is not there."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from lambdaserve.kernel.errors import ModelSaveError
from lambdaserve.registry.mlflow_connection import connection_failed, fail_fast

#: Fail in seconds against an unreachable tracking server, not after MLflow's minutes of retries.
_URI = re.compile(
    r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w.-]+))/?$"
    r"|^runs:/(?P<run>[0-9a-zA-Z]+)/(?P<path>[^?#]+)$"
)
_SECRET_WORDS = ("token", "key", "secret", "pass", "pwd", "auth", "sig", "credential")


def is_mlflow_uri(source: str) -> bool:
    return source.startswith(("models:/", "runs:/"))


@dataclass(frozen=True)
class MlflowModelUri:
    uri: str
    model_name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None


def parse_model_uri(uri: str) -> MlflowModelUri:
    match = _URI.match(uri)
    if match is None:
        raise ModelSaveError(
            f"{uri} is not an MLflow model URI lambdaserve reads: use models:/NAME/VERSION, "
            "models:/NAME@ALIAS or runs:/RUN_ID/PATH"
        )
    return MlflowModelUri(uri, match["name"], match["version"], match["alias"], match["run"])


def public_tracking_uri(uri: str) -> str:
    """``uri`` without ``user:password@`` and without query parameters that look like secrets."""
    parts = urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query)
            if not any(w in k.lower() for w in _SECRET_WORDS)
        ]
    )
    if host == parts.netloc and query == parts.query and not parts.fragment:
        return uri
    return f"{parts.scheme}://{host}{parts.path}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class FetchedModel:
    """A downloaded MLflow model: its directory, its MLmodel, the version and run it is."""

    path: Path
    mlmodel: Any
    version: str | None
    run_id: str | None


def fetch_model(ref: MlflowModelUri, tracking_uri: str, work: Path) -> FetchedModel:
    """Resolve the URI (a registered version, an alias, a run) and download the model."""
    fail_fast()
    _check_local_store(tracking_uri)
    import mlflow.artifacts
    from mlflow import MlflowClient
    from mlflow.models import Model

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    public = public_tracking_uri(tracking_uri)
    if ref.model_name is not None:
        what = f"model {ref.model_name} " + (
            f"version {ref.version}" if ref.version else f"@{ref.alias}"
        )
        get = client.get_model_version if ref.version else client.get_model_version_by_alias
        found = _call(public, what, get, ref.model_name, ref.version or ref.alias)
        version, run_id = str(found.version), found.run_id
        download = f"models:/{ref.model_name}/{version}"  # the version the alias named just now
    else:
        _call(public, f"run {ref.run_id}", client.get_run, ref.run_id)
        version, run_id, download = None, ref.run_id, ref.uri
    local = _call(
        public,
        f"download {download}",
        mlflow.artifacts.download_artifacts,
        artifact_uri=download,
        dst_path=str(work),
        tracking_uri=tracking_uri,
        registry_uri=tracking_uri,
    )
    path = Path(local)
    if not (path / "MLmodel").is_file():
        raise ModelSaveError(
            f"{ref.uri} is not an MLflow model (no MLmodel file): point at the model's artifacts "
            "(runs:/RUN_ID/NAME as logged with mlflow.sklearn.log_model)"
        )
    return FetchedModel(path, Model.load(str(path / "MLmodel")), version, run_id)


def _check_local_store(tracking_uri: str) -> None:
    """A missing SQLite file or store directory would be created empty: say it is missing."""
    parts = urlsplit(tracking_uri)
    if parts.scheme == "sqlite":
        location = tracking_uri.removeprefix("sqlite:///")
    elif parts.scheme in {"", "file"}:
        location = parts.path
    else:
        return
    if not Path(location).exists():
        raise ModelSaveError(
            f"no MLflow tracking store at {location}: check --tracking-uri or MLFLOW_TRACKING_URI"
        )


def _call[T](public: str, what: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call MLflow; its refusals and connection failures become one-line ``ModelSaveError``s."""
    from mlflow.exceptions import MlflowException

    try:
        return function(*args, **kwargs)
    except MlflowException as exc:
        if connection_failed(exc):
            raise _unreachable(public) from exc
        message = str(exc.message).splitlines()[0][:300]
        raise ModelSaveError(f"{what} at {public}: {message}") from exc
    except OSError as exc:
        raise _unreachable(public) from exc
    except Exception as exc:  # requests' and SQLAlchemy's errors are their own types
        if type(exc).__module__.startswith(("requests", "urllib3", "sqlalchemy")):
            raise _unreachable(public) from exc
        raise


def _unreachable(public: str) -> ModelSaveError:
    return ModelSaveError(
        f"MLflow tracking server {public} is unreachable: check --tracking-uri or "
        "MLFLOW_TRACKING_URI and that the server is up"
    )
