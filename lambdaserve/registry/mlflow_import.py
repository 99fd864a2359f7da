"""A scikit-learn model in the user's MLflow (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``,
``runs:/RUN_ID/PATH``) becomes a verified bundle, written by ``save_model`` like any other.

The schema comes from the model's signature (or a sample CSV), the reference profile from the
training data CSV. A skops model file is loaded with lambdaserve's allow-list and the
deployment's trust (``--trust``/``--code``), never with the ``skops_trusted_types`` the artifact
lists for itself; a pickle or cloudpickle file only with ``allow_pickle``, here on the importing
machine. The bundle is always skops (and ONNX), and records where the model came from, with the
tracking URI's credentials removed.
"""

from __future__ import annotations

import pickle
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.kernel.errors import ModelSaveError, UnsafeArtifactError
from lambdaserve.kernel.manifest import ModelSource
from lambdaserve.kernel.model_trust import NO_TRUST, ModelTrust
from lambdaserve.kernel.sklearn_predictor import custom_types_needed, load_skops_model
from lambdaserve.registry.mlflow_tracking import (
    FetchedModel,
    MlflowModelUri,
    fetch_model,
    parse_model_uri,
    public_tracking_uri,
)
from lambdaserve.registry.signature_frames import read_frame, sample_plan, signature_plan

_BUNDLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PICKLE_FORMATS = ("pickle", "cloudpickle")


@dataclass(frozen=True)
class ImportData:
    """The user's CSVs: ``reference`` (the training rows: drift baseline and schema ranges),
    ``sample`` (the input columns, for a model without a signature), ``holdout`` and ``target``
    (the target column of both: the holdout metrics)."""

    reference: Path
    sample: Path | None = None
    holdout: Path | None = None
    target: str | None = None


def import_from_mlflow(
    uri: str,
    destination: Path,
    *,
    tracking_uri: str,
    data: ImportData,
    name: str | None = None,
    allow_pickle: bool = False,
    trust: ModelTrust = NO_TRUST,
    next_version: Callable[[str], str] | None = None,
) -> VerifiedBundle:
    """Read the scikit-learn model at ``uri`` from ``tracking_uri`` and write it with the user's
    data as a verified bundle at ``destination`` (named ``name``, default the registered
    model's; its version ``next_version(name)``, e.g. the store's next). Every refusal is a
    ``ModelSaveError`` that says what to do; nothing is written."""
    from lambdaserve.training.saving import save_model  # skops and sklearn: not at CLI start

    ref = parse_model_uri(uri)
    bundle_name = _bundle_name(name, ref)
    public = public_tracking_uri(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="lambdaserve-mlflow-") as work:
        fetched = fetch_model(ref, tracking_uri, Path(work))
        model, serialization = _load_sklearn(fetched, uri, allow_pickle=allow_pickle, trust=trust)
        plan = signature_plan(fetched.mlmodel.signature, uri)
        if plan is None and data.sample is not None:
            plan = sample_plan(data.sample)
        X, y = read_frame(data.reference, plan, data.target, "--reference")
        eval_set = None
        if data.holdout is not None and data.target is not None:
            eval_set = read_frame(data.holdout, plan, data.target, "--holdout")
        source = ModelSource(
            kind="mlflow",
            uri=uri,
            tracking_uri=public,
            model_name=ref.model_name,
            model_version=fetched.version,
            run_id=fetched.run_id,
            serialization=serialization,
            library_version=_logged_with(fetched),
        )
        return save_model(
            model,
            destination,
            name=bundle_name,
            X=X,
            y=y,
            eval_set=eval_set,
            trusted=_trusted_types(model, trust),
            version=next_version(bundle_name) if next_version else None,
            source=source,
        )


def _bundle_name(name: str | None, ref: MlflowModelUri) -> str:
    chosen = name or ref.model_name
    if chosen is None:
        raise ModelSaveError(f"{ref.uri} names no registered model: pass --name NAME")
    if not _BUNDLE_NAME.match(chosen):
        raise ModelSaveError(
            f"{chosen!r} is not a lambdaserve model name (letters, digits, '.', '_', '-'; 64 at "
            "most): pass --name NAME"
        )
    return chosen


def _logged_with(fetched: FetchedModel) -> str | None:
    """The scikit-learn version the MLmodel file says the model was saved with."""
    conf = dict(fetched.mlmodel.flavors or {}).get("sklearn")
    version = conf.get("sklearn_version") if isinstance(conf, dict) else None
    return str(version) if version else None


def _load_sklearn(
    fetched: FetchedModel, uri: str, *, allow_pickle: bool, trust: ModelTrust
) -> tuple[object, str]:
    """The fitted estimator and the format it was stored in."""
    flavors = dict(fetched.mlmodel.flavors or {})
    conf = flavors.get("sklearn")
    if not isinstance(conf, dict):
        raise ModelSaveError(
            f"{uri} is an MLflow model of flavour {', '.join(sorted(flavors)) or 'none'}, not "
            "sklearn: lambdaserve imports models logged with mlflow.sklearn.log_model"
        )
    serialization = str(conf.get("serialization_format") or "pickle")
    path = (fetched.path / str(conf.get("pickled_model", ""))).resolve()
    if not path.is_file() or not path.is_relative_to(fetched.path.resolve()):
        raise ModelSaveError(f"{uri}'s MLmodel names no model file inside the model's artifacts")
    if serialization == "skops":
        try:
            return load_skops_model(str(path), trust), serialization
        except UnsafeArtifactError as exc:  # the artifact's own skops_trusted_types are not read
            raise ModelSaveError(f"{uri}: {exc}") from exc
    if serialization not in _PICKLE_FORMATS:
        raise ModelSaveError(
            f"{uri} is saved as {serialization!r}, a format lambdaserve does not read"
        )
    if not allow_pickle:
        raise ModelSaveError(
            f"{uri} is saved with {serialization}, which runs code when loaded: pass "
            "--allow-pickle if you trust where it came from (the bundle is written with skops), "
            "or log it again with serialization_format='skops'"
        )
    return _unpickle(path, serialization, uri, trust), serialization


def _unpickle(path: Path, serialization: str, uri: str, trust: ModelTrust) -> object:
    trust.activate()
    try:
        with path.open("rb") as handle:
            if serialization == "cloudpickle":
                import cloudpickle  # type: ignore[import-untyped]

                return cloudpickle.load(handle)
            return pickle.load(handle)  # noqa: S301 - the user consented with --allow-pickle
    except (ImportError, AttributeError) as exc:
        raise ModelSaveError(
            f"{uri} needs code this machine cannot import ({exc}): name its package's "
            "directory with --code DIR"
        ) from exc
    except (pickle.UnpicklingError, EOFError) as exc:
        raise ModelSaveError(
            f"{uri}'s model file is not a readable {serialization}: {exc}"
        ) from exc


def _trusted_types(model: object, trust: ModelTrust) -> tuple[str, ...]:
    """The types save_model may find in the model: those trusted by name, and those the
    ``--code`` directories define."""
    if not trust.code_dirs:
        return tuple(sorted(trust.types))
    import skops.io as sio

    needed = custom_types_needed(sio.get_untrusted_types(data=sio.dumps(model)))
    return tuple(sorted(trust.types | {t for t in needed if trust.allows(t)}))
