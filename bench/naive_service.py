"""The naive baseline: the same bundle's pipeline served the way people write it today.

Decisions (so the comparison isolates the model runtime and pandas, not the web framework):

- Same framework as ours: a FastAPI app wrapped by Mangum (``lifespan="off"``), ``async`` routes,
  answering the same API Gateway events. It has no Powertools logging or EMF metrics, which ours
  pays for, so every ratio is conservative for ours.
- The model is loaded once per process (not per request) from the bundle's ``model.skops`` with
  ``skops.io.load(trusted=get_untrusted_types(file=...))``: trust whatever the file asks for, no
  hash checks. Column order and kinds come from ``manifest.json`` read as plain JSON.
- Per request: a pandas DataFrame from the JSON rows, reordered to the schema's columns, numeric
  columns cast to float, missing categories filled with the marker training used, then
  ``to_numpy(dtype=object)`` (our pipeline is fitted on an object matrix addressed by column
  position, not on DataFrame names) and scikit-learn ``predict_proba``. The estimator keeps the
  parameters it was trained with (the forest has ``n_jobs=-1``), as a user's pipeline would.
  ``n_jobs=1`` builds a tuned variant, reported for information next to the targets: joblib
  dispatches a thread pool on every call, which dominates a forest's single-row latency.
- Batches either loop over rows (one DataFrame and one ``predict_proba`` per row, what a service
  built around a single-row ``predict`` does) or build one DataFrame for all rows ("vectorized").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import skops.io as sio
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel

#: How training encodes a missing categorical value (lambdaserve.kernel.schema.MISSING_CATEGORY).
MISSING_CATEGORY = "__missing__"
BatchMode = Literal["loop", "vectorized"]
Value = float | str | None
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class NaivePredictRequest(BaseModel):
    features: dict[str, Value]


class NaiveBatchRequest(BaseModel):
    instances: list[dict[str, Value]]


class NaiveModel:
    """The skops pipeline plus the column lists a hand-written service hard-codes."""

    def __init__(self, bundle_dir: Path, n_jobs: int | None = None) -> None:
        manifest = json.loads((bundle_dir / "manifest.json").read_text())
        features = manifest["features"]["features"]
        self.name = manifest["name"]
        self.version = manifest["version"]
        self.columns = [f["name"] for f in features]
        self.numeric = [f["name"] for f in features if f["kind"] == "numeric"]
        self.categorical = [f["name"] for f in features if f["kind"] == "categorical"]
        self.threshold = float(manifest["decision_threshold"])
        path = str(bundle_dir / manifest["skops_file"])
        self.pipeline = sio.load(path, trusted=sio.get_untrusted_types(file=path))
        estimator = self.pipeline.steps[-1][1]
        if n_jobs is not None and "n_jobs" in estimator.get_params():
            estimator.set_params(n_jobs=n_jobs)

    def score(self, rows: Sequence[dict[str, Value]]) -> list[float]:
        frame = pd.DataFrame(list(rows))[self.columns]
        frame[self.numeric] = frame[self.numeric].astype("float64")
        frame[self.categorical] = frame[self.categorical].fillna(MISSING_CATEGORY)
        probabilities = self.pipeline.predict_proba(frame.to_numpy(dtype=object))
        return [float(p) for p in probabilities[:, 1]]

    def answer(self, probability: float) -> dict[str, Any]:
        return {
            "model": {"name": self.name, "version": self.version},
            "probability": probability,
            "label": int(probability >= self.threshold),
        }


def create_naive_app(model: NaiveModel, batch_mode: BatchMode) -> FastAPI:
    app = FastAPI(title="naive sklearn service")

    @app.post("/predict")
    async def predict(request: NaivePredictRequest) -> dict[str, Any]:
        (probability,) = model.score([request.features])
        return model.answer(probability)

    @app.post("/predict/batch")
    async def predict_batch(request: NaiveBatchRequest) -> dict[str, Any]:
        if batch_mode == "loop":
            scores = [model.score([row])[0] for row in request.instances]
        else:
            scores = model.score(request.instances)
        return {"predictions": [model.answer(p) for p in scores]}

    return app


def build_naive_handler(
    bundle_dir: Path, batch_mode: BatchMode = "vectorized", *, n_jobs: int | None = None
) -> Handler:
    """The naive Lambda handler for the bundle in ``bundle_dir``; loads the model now."""
    model = NaiveModel(bundle_dir, n_jobs)
    handler: Handler = Mangum(create_naive_app(model, batch_mode), lifespan="off")
    return handler
