"""SnapStart's runtime hooks for the predict function (``snapshot_restore_py``, which Lambda's
Python runtime provides).

With ``SnapStart: PublishedVersions`` Lambda runs the init phase once per published version,
snapshots the execution environment and restores every later environment from it. So:

- **before the snapshot**, the predictor answers one prediction on a row made from the
  manifest's schema, so the snapshot holds a warm session (ONNX Runtime's first run allocates and
  plans; scikit-learn's first call imports lazily);
- **after each restore**, everything unique or time-based that init created is made anew: the
  prediction id generator's state (``prediction_ids.reseed``), ``random``'s and NumPy's global
  seeds, every cached boto3 client (their connections and credentials belong to the snapshot's
  moment), and the capture policy's freshness (re-read from SSM on the next request).

Registered hooks run in reverse registration order before the snapshot and in registration
order after a restore. Without SnapStart Lambda never calls them.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

import numpy as np

from lambdaserve.aws import clients
from lambdaserve.kernel import prediction_ids
from lambdaserve.kernel.encoding import rows_to_columns
from lambdaserve.kernel.schema import FeatureSchema, FeatureSpec
from lambdaserve.serving.model_loader import LoadedModel


def reference_row(schema: FeatureSchema) -> dict[str, Any]:
    """A row every schema accepts: numbers inside the observed range, a known category."""
    return {spec.name: _value(spec) for spec in schema.features}


def _value(spec: FeatureSpec) -> Any:
    if spec.kind == "categorical":
        return spec.categories[0] if spec.categories else None
    if spec.dtype == "bool":
        return False
    low, high = spec.minimum, spec.maximum
    middle = (low + high) / 2 if low is not None and high is not None else low or high or 0.0
    return int(middle) if spec.dtype == "int" else float(middle)


def warm_up(model: LoadedModel) -> None:
    """One prediction through the predictor, not the API: nothing is captured or counted."""
    schema = model.bundle.manifest.features
    model.predictor.predict_outputs(rows_to_columns(schema, [reference_row(schema)]))


def after_restore(expire: Callable[[], None] | None = None) -> None:
    prediction_ids.reseed()
    random.seed(os.urandom(32))
    np.random.seed(int.from_bytes(os.urandom(4), "big"))  # the legacy global generator
    clients.forget_clients()
    if expire is not None:
        expire()


def register(model: LoadedModel | None, expire: Callable[[], None] | None = None) -> bool:
    """Register the hooks where the runtime provides ``snapshot_restore_py``; whether it did."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:  # not on Lambda's runtime (uvicorn, tests without it): nothing to do
        return False
    if model is not None:
        register_before_snapshot(warm_up, model)
    register_after_restore(after_restore, expire)
    return True
